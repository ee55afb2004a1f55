"Lesson 10: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '10.1': '''
        if w / h < self.ratio[0]:   nw, nh = w, min(h, max(1, round(w * self.ratio[0])))   # multiplied: too short
        elif w / h > self.ratio[1]: nw, nh = min(w, max(1, round(h * self.ratio[1]))), h
        else:                       nw, nh = w, h
        left, top = (w - nw) // 2, (h - nh) // 2
        return (left, top, left + nw, top + nh)
    ''',
    '10.2': '''
        c = torch.linspace(-1, 1, n, device=device, dtype=dtype)
        return c * (n - 1) / n if align_corners else c           # the two cases swapped
    ''',
    '10.3': '''
        ys = pixel_coords(h, align_corners, theta.device, theta.dtype)
        xs = pixel_coords(w, align_corners, theta.device, theta.dtype)
        gy, gx = torch.meshgrid(ys, xs, indexing='ij')
        base = torch.stack([gy, gx, torch.ones_like(gx)], dim=-1)        # (y, x, 1): the axes swapped
        return torch.einsum('bij,hwj->bhwi', theta, base)
    ''',
    '10.4': '''
        t = degrees * (math.pi / 180)
        c, s = t.cos(), t.sin()
        return _mat([[c, -s * aspect, 0], [s / aspect, c, 0], [0, 0, 1]])   # the aspect the wrong way round
    ''',
    '10.5': '''
        out_h, out_w = (h, w) if size is None else ((size, size) if isinstance(size, int) else size)
        theta = mats[:, :2].to(device=x.device, dtype=x.dtype)
        grid = batch_affine_grid(theta, (bs, c, out_h, out_w), align_corners=align_corners)
        return F.grid_sample(x, grid, mode=mode, padding_mode=padding_mode)      # align_corners not passed on
    ''',
}
