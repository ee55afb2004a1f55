"Lesson 07: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '07.1': '''
        m = x.mean((0, 2, 3), keepdim=True)
        v = x.var ((0, 2, 3), keepdim=True, unbiased=False)
        with torch.no_grad():
            self.means.lerp_(m, self.mom)
            self.vars.lerp_(v, self.mom)              # the biased variance kept: running variance too small
    ''',
    '07.2': '''
        m = xf.mean(1, keepdim=True)                  # over the channels only: a wrong axis
        v = xf.var (1, keepdim=True, unbiased=False)
        return ((xf - m) / (v + self.eps).sqrt() * self.mult + self.add).to(x.dtype)
    ''',
    '07.3': '''
        xg = x.to(self.compute_dtype(x)).reshape(x.shape[0], self.num_groups, -1)
        m = xg.mean(-1, keepdim=True)
        v = xg.var (-1, keepdim=True)                 # unbiased: not what nn.GroupNorm divides by
        xg = (xg - m) / (v + self.eps).sqrt()
        return (xg.reshape(x.shape) * self.mults + self.adds).to(x.dtype)
    ''',
}
