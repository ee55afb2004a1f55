"""The course library, generated from the lesson notebooks in ``nbs/``.

Each module ``exp/nb_NN.py`` is written by ``notebook2script.py`` from the ``#export`` cells of
``nbs/NN_*.ipynb`` and star-imports the module of the lesson before it, so ``from exp.nb_07 import *``
gives everything built up to lesson 07. Do not edit the modules by hand: edit the notebook and run
``python notebook2script.py``.
"""
