"Lesson 10c: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '10c.1': '''
        for p, mp in zip(_flat(model_pgs), _flat(master_pgs)):
            if p.grad is not None: mp.grad = p.grad.detach().float()   # a master grad kept when the model has none
    ''',
    '10c.2': '''
        sums = [p.grad.sum() for p in params if p.grad is not None]     # summed in fp16: finite grads overflow
        if not sums: return False
        return not torch.isfinite(torch.stack(sums)).all().item()
    ''',
    '10c.3': '''
        if overflow:
            self.scale *= self.backoff_factor                            # the count of clean steps not reset
            return
        self.n_clean += 1
        if self.n_clean == self.growth_interval:
            self.scale = min(self.scale * self.growth_factor, self.max_scale)
            self.n_clean = 0
    ''',
}
