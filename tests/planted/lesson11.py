"Lesson 11: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '11.1': '''
        bn = nn.BatchNorm2d(nf)                                          # zero_bn forgotten: γ is always 1
        layers = [nn.Conv2d(ni, nf, ks, stride=stride, padding=ks // 2, bias=False), bn]
        if act: layers.append(nn.ReLU(inplace=True))
        return nn.Sequential(*layers)
    ''',
    '11.2': '''
        ni, nf = ni * expansion, nh * expansion
        if expansion == 1: layers = [xconv_layer(ni, nh, 3, stride=stride)]
        else: layers = [xconv_layer(ni, nh, 1, stride=stride), xconv_layer(nh, nh, 3)]   # stride on the 1×1 (no tweak B)
        layers.append(xconv_layer(nh, nf, 3 if expansion == 1 else 1, zero_bn=True, act=False))
        self.convs = nn.Sequential(*layers)
        self.pool = nn.Identity() if stride == 1 else nn.AvgPool2d(2, ceil_mode=True)
        self.idconv = nn.Identity() if ni == nf else xconv_layer(ni, nf, 1, act=False)
        self.act = nn.ReLU(inplace=True)
    ''',
    '11.3': '''
        f = nn.init.kaiming_uniform_ if uniform else nn.init.kaiming_normal_
        for l in m.children():                                           # nested layers left out
            if isinstance(l, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
                f(l.weight, nonlinearity='relu')
                if l.bias is not None: nn.init.zeros_(l.bias)
        return m
    ''',
}
