"""Paper glue: what each paper claims and the experiments behind its chapters.

* :mod:`mnistnd.papers.claims`: the :class:`~mnistnd.papers.claims.Claim` record and the
  function that checks a list of claims against a results table, with small helpers for checks;
* :mod:`mnistnd.papers.mnist_nd`: the MNIST-Nd paper's reported numbers
  (:mod:`~mnistnd.papers.mnist_nd_numbers`) and its claims about the m-VAEs, the datasets'
  properties (:mod:`~mnistnd.papers.mnist_nd_properties`) and the clustering benchmark.
"""
