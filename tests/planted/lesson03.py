"Lesson 03: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '03.1': '''
        return x.exp().sum(dim).log()                     # the naive formula: exp overflows for large scores
    ''',
    '03.2': '''
        e = x.exp()                                       # the naive softmax, then its log: inf / inf for large scores
        return (e / e.sum(dim, keepdim=True)).log()
    ''',
    '03.3': '''
        with torch.no_grad():
            for p in self.params:
                if p.grad is not None: p += p.grad * self.lr       # up the gradient: the wrong sign
    ''',
    '03.4': '''
        loss = loss_func(model(xb), yb)
        loss.backward()
        opt.step()                                        # no opt.zero_grad(): the gradients pile up batch after batch
        hist['train_loss'].append(loss.item())
    ''',
}
