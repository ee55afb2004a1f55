"Lesson 01: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '01.1': '''
        for i in range(ar):
            for j in range(bc): c[i, j] = (a[i, :] * b[j, :]).sum()     # a row of b, not its column j
        return c
    ''',
    '01.2': '''
        for i in range(ar): c[i] = (a[i, :, None] * b).sum(dim=1)      # summed over the columns of b: wrong axis
        return c
    ''',
    '01.3': '''
        _matmul_dims(a, b)
        return torch.einsum('ik,kj->ji', a, b)                          # the output's indices swapped: the transpose
    ''',
}
