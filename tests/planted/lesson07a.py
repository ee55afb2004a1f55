"Lesson 07a: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '07a.1': '''
        return [o for o in m.modules() if cond(o)]    # searches inside the matches too
    ''',
    '07a.2': '''
        mean, std = measure()                         # one round only: with a bias, the std is not 1 after it
        module.weight.div_(std)
        mean, std = measure()
        _shift_bias(module, mean)
        mean, std = measure()
    ''',
}
