"Lesson 12d: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '12d.1': '''
        row, start = (idx % self.rank_bs) * self.world + self.rank, (idx // self.rank_bs) * self.bptt   # rows dealt out in turn
        seq = self.batched[row, start:start + self.bptt + 1]
        return seq[:-1], seq[1:]
    ''',
    '12d.2': '''
        gbs, short = bs * world, len(order) % (bs * world)
        if pad and world > 1 and short:
            order = order + (order * math.ceil(gbs / len(order)))[:gbs - short]   # padded from the start, as DistributedSampler
        return [i for b in range(0, len(order), gbs) for i in order[b + rank * bs: b + (rank + 1) * bs]]
    ''',
}
