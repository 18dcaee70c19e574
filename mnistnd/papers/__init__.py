"""Paper glue: what each paper claims and the experiments behind its chapters.

* :mod:`mnistnd.papers.claims`: the :class:`~mnistnd.papers.claims.Claim` record and the
  function that checks a list of claims against a results table;
* :mod:`mnistnd.papers.mnist_nd`: the MNIST-Nd paper's claims about its clustering benchmark.
"""
