"Lesson 12: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '12.1': '''
        if t[:1].isupper(): res += [TK_MAJ, t.lower()]      # any first capital: McDonald loses its case
        else: res.append(t)
    ''',
    '12.2': '''
        docs = self.docs()
        order = torch.randperm(len(docs), generator=self.gen).tolist() if self.shuffle else range(len(docs))
        stream = torch.from_numpy(np.concatenate([np.asarray(docs[i], dtype=np.int64) for i in order]))
        self.batched = stream[:self.n_batch * self.bs].view(self.n_batch, self.bs).t()   # rows interleaved
    ''',
    '12.3': '''
        row, start = idx % self.bs, (idx // self.bs) * (self.bptt + 1)   # windows of bptt+1 that do not overlap
        seq = self.batched[row, start:start + self.bptt + 1]
        return seq[:-1], seq[1:]
    ''',
    '12.4': '''
        res = torch.full((len(xs), max((len(x) for x in xs), default=0)), pad_idx, dtype=torch.long)
        for i, x in enumerate(xs):
            res[i, :len(x)] = x                                # pad_first forgotten
        return res, torch.tensor([s[1] for s in samples])
    ''',
}
