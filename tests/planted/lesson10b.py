"Lesson 10b: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '10b.1': '''
        self.λ = self.sample_λ(yb.size(0), xb.device)
        self.perm = torch.randperm(yb.size(0), device=xb.device)
        self.yb1 = yb[self.perm]
        self.run.xb = lin_comb(xb[self.perm], xb, _per_item(self.λ, xb))     # λ on the partner, not the image
    ''',
    '10b.2': '''
        loss1, loss2 = self.old_loss_func(pred, yb), self.old_loss_func(pred, self.yb1)   # already reduced
        loss = lin_comb(loss1, loss2, self.λ)
        return reduce_loss(loss, getattr(self.old_loss_func, 'reduction', 'mean'))
    ''',
    '10b.3': '''
        c = output.size(-1)
        log_preds = F.log_softmax(output, dim=-1)
        smooth = reduce_loss(-log_preds.sum(dim=-1), self.reduction)
        nll = F.nll_loss(log_preds, target, reduction=self.reduction)
        return lin_comb(nll, smooth / c, self.ε)              # the weights swapped: ε on the true class
    ''',
    '10b.4': '''
        r = 1 - λ                                             # no square root: the box area is (1-λ)² of the image
        cy, cx = torch.rand(bs, device=dev) * h, torch.rand(bs, device=dev) * w
        y0, y1 = cy - r * h / 2, cy + r * h / 2
        x0, x1 = cx - r * w / 2, cx + r * w / 2
        ys = torch.arange(h, device=dev) + 0.5
        xs = torch.arange(w, device=dev) + 0.5
        in_y = (ys >= y0[:, None]) & (ys < y1[:, None])
        in_x = (xs >= x0[:, None]) & (xs < x1[:, None])
        return in_y[:, :, None] & in_x[:, None, :]
    ''',
    '10b.5': '''
        self.λ = self.sample_λ(bs, xb.device)                 # the drawn λ kept, not the share of pixels kept
        masks = box_masks(self.λ, h, w)
        self.perm = torch.randperm(bs, device=xb.device)
        self.yb1 = yb[self.perm]
        self.run.xb = torch.where(masks[:, None], xb[self.perm], xb)
    ''',
}
