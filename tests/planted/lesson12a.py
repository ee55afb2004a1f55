"Lesson 12a: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '12a.1': '''
        i, f, o, g = (self.ih(x) + self.hh(h)).chunk(4, 1)     # the gates in another order than PyTorch's
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h = o.sigmoid() * c.tanh()
        return h, (h, c)
    ''',
    '12a.2': '''
        if not self.training or self.p == 0.: return x
        return x * dropout_mask(x.detach(), x.shape, self.p)     # a new mask at every time step
    ''',
    '12a.3': '''
        self.register_parameter(f'{name}_raw', w)               # registered here, but still the LSTM's parameter too
    ''',
    '12a.4': '''
        return F.dropout(self.emb(words), self.embed_p, self.training)   # drops single numbers, not whole words
    ''',
}
