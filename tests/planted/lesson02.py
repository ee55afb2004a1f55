"Lesson 02: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '02.1': '''
        inp.g = out.g @ w.t()
        w.g = inp.t() @ out.g
        b.g = out.g.mean(0)                 # the bias is added to every row: its gradient is the sum, not the mean
    ''',
    '02.2': '''
        mse_grad(out, targ)
        lin_grad(l2, out, w2, b2)
        lin_grad(inp, l2, w1, b1)           # the ReLU's backward forgotten: l2's gradient used as l1's
    ''',
    '02.3': '''
        self.loss.backward()
        for l in reversed(self.layers[1:]): l.backward()     # off by one: the first layer never runs backward
    ''',
}
