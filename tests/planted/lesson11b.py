"Lesson 11b: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '11b.1': '''
        if self.shuffle: idx = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed)).tolist()   # epoch forgotten
        else: idx = list(range(self.n))
        if self.pad and self.n: idx = (idx * math.ceil(self.total / self.n))[:self.total]
        return iter(idx[self.rank:self.total:self.world])
    ''',
    '11b.2': '''
        g_mean = means.mean(0)                                           # the ranks' means not weighted by their counts
        g_m2 = m2s.sum(0) + (ns * (means - g_mean).pow(2)).sum(0)
        y = (xf - g_mean.view(shape)) * torch.rsqrt(g_m2 / total + self.eps).view(shape)
        if self.affine: y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                f = self.momentum if self.momentum is not None else 1. / self.num_batches_tracked.item()
                self.running_mean.lerp_(g_mean.to(self.running_mean.dtype), f)
                self.running_var.lerp_((g_m2 / (total - 1)).to(self.running_var.dtype), f)
        return y.to(x.dtype)
    ''',
}
