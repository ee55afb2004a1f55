"Lesson 04: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '04.1': '''
        self.xb, self.yb, self.pred, self.loss = xb, yb, None, None
        if not self('begin_batch'):
            self.pred = self.model(self.xb);                       self('after_pred')
            self.loss = self.loss_func(self.pred, self.yb)
            if not self('after_loss'):                             # in_train forgotten: validation batches train too
                self.loss.backward()
                if not self('after_backward'):
                    self.opt.step();                               self('after_step')
                    self.opt.zero_grad()
        self('after_batch')
    ''',
    '04.2': '''
        return any(cb(event) for cb in self._handlers[event])     # stops at the first True: later callbacks never run
    ''',
    '04.3': '''
        self.tot_loss += run.loss.detach()                         # one per batch: a plain mean of the batch means
        self.count += 1
        for i, m in enumerate(self.metrics): self.tot_mets[i] += m(run.pred, run.yb)
    ''',
}
