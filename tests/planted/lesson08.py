"Lesson 08: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '08.1': '''
        gp = Path(fn).parent.name                     # the parent folder, not the grandparent
        return True if gp == valid_name else False if gp == train_name else None
    ''',
    '08.2': '''
        mask = [f(o) for o in items]
        train = [o for o, m in zip(items, mask) if not m]     # None is falsy: the left-out items land in train
        valid = [o for o, m in zip(items, mask) if m]
        return train, valid
    ''',
    '08.3': '''
        if self.vocab is None:
            known = uniqueify(o for o in items if o != self.unknown)      # not sorted: the order of appearance
            self.vocab = known if self.unknown is None else [self.unknown] + known
            self.otoi = {v: i for i, v in enumerate(self.vocab)}
    ''',
    '08.4': '''
        w, h = item.size
        res = torch.frombuffer(bytearray(item.tobytes()), dtype=torch.uint8)
        return res.view(w, h, -1).permute(2, 1, 0)    # (c, h, w) in shape, but the rows are read as columns
    ''',
}
