"Lesson 01's exercises: the hand-written matrix products, checked against PyTorch's own `@`"
import torch

from exercises import close, equal, exercise

# (rows of a, inner size, columns of b): square first, so a mixed-up index gives wrong numbers before a wrong shape
SHAPES = [(4, 4, 4), (1, 1, 1), (2, 5, 3), (5, 3, 1), (1, 7, 2), (6, 2, 4)]


def _check_matmul(name, matmul):
    "`matmul` on small float32 matrices of several shapes, then on float64 ones with MNIST's 784 inputs"
    for k, (ar, ac, bc) in enumerate(SHAPES):
        g = torch.Generator().manual_seed(k)
        a, b = torch.randn(ar, ac, generator=g), torch.randn(ac, bc, generator=g)
        close(f'your `{name}` of a {ar}x{ac} and a {ac}x{bc} matrix', matmul(a, b), a @ b)
    g = torch.Generator().manual_seed(10)
    a, b = torch.randn(3, 784, generator=g, dtype=torch.float64), torch.randn(784, 10, generator=g, dtype=torch.float64)
    out = matmul(a, b)
    equal(f'the dtype of your `{name}` of two float64 matrices', getattr(out, 'dtype', type(out)), torch.float64)
    close(f'your `{name}` of a 3x784 and a 784x10 float64 matrix', out, a @ b, atol=1e-10, rtol=1e-10)


@exercise('01.1')
def elementwise(matmul_elementwise):
    "Each entry as a row times a column, summed: against a @ b"
    _check_matmul('matmul_elementwise', matmul_elementwise)


@exercise('01.2')
def broadcast(matmul_broadcast):
    "One loop over the rows, each broadcast against b: against a @ b"
    _check_matmul('matmul_broadcast', matmul_broadcast)


@exercise('01.3')
def einsum(matmul_einsum):
    "Einstein summation: against a @ b"
    _check_matmul('matmul_einsum', matmul_einsum)
