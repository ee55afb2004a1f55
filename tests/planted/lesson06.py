"Lesson 06: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '06.1': '''
        if not hasattr(hook, 'stats'): hook.stats = ([], [], [])
        means, stds, hists = hook.stats
        o = outp.detach().float()
        means.append(o.mean().item())
        stds.append(o.std().item())
        hists.append(o.histc(bins).cpu())             # no range: histc spans the batch's own min and max
    ''',
    '06.2': '''
        x = F.leaky_relu(x, self.leak) if self.leak else F.relu(x)
        if self.maxv is not None: x = x.clamp_max(self.maxv)     # the ceiling before the shift
        if self.sub is not None: x = x - self.sub
        return x
    ''',
    '06.3': '''
        f = init.kaiming_uniform_ if uniform else init.kaiming_normal_
        for l in m.children():                        # the top level only: nested convs keep their weights
            if isinstance(l, nn.Conv2d):
                f(l.weight, a=0.1)
                if l.bias is not None: l.bias.data.zero_()
        return m
    ''',
}
