"Lesson 11a: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '11a.1': '''
        res = {prefix + k: v.detach() for k, v in {**m._parameters, **m._buffers}.items() if v is not None}   # non-persistent kept
        for name, child in m._modules.items(): res.update(state_dict_by_hand(child, f'{prefix}{name}.'))
        return res
    ''',
    '11a.2': '''
        if isinstance(m, (nn.Linear, *bn_types)): return
        for p in m.parameters(): p.requires_grad_(b)                     # recursive: a container freezes everything
    ''',
    '11a.3': '''
        body_wd, rest = [], []
        def _split(l): (rest if isinstance(l, bn_types) else body_wd).extend(l.parameters(recurse=False))
        m.apply(_split)                                                  # the head's linear layer goes with the body
        return body_wd, rest
    ''',
}
