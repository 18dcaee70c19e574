"""Chapter parameters: the ``parameters`` cell, one typed parser, constraints declared with them.

Every chapter declares its parameters in one code cell tagged ``parameters``, one annotated
assignment per line, with a comment that says what the parameter is::

    epochs: int = 6  # {>= 1} maximum training epochs per model
    latent_dims: list[int] = [2, 64]  # {in 2|4|8|16|32|64; len >= 1; unique} datasets
    source: str = "auto"  # {in auto|full|bundled} MNIST source

The annotation is one of ``int``, ``float``, ``str``, ``bool``, ``list[int]``, ``list[float]``,
``list[str]``, each optionally ``| None``. A comment may start with constraints in braces,
separated by ``;``; they are the only place the allowed values are written:

* ``>= x``, ``> x``, ``<= x``, ``< x``, ``!= x``: bounds (of every element of a list);
* ``in a|b|c``: allowed values (of every element of a list);
* ``len >= n`` (any comparison): the number of elements of a list;
* ``unique``: no element of a list repeated.

``None`` is allowed exactly when the annotation says ``| None``; constraints apply to the other
values. Profile values (``mnistnd/profiles.yaml``), ``-p NAME VALUE`` and Python values all go
through :func:`check_value`, so a bad value is refused before a kernel starts.
"""

from __future__ import annotations

import ast
import io
import math
import operator
import os
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

from mnistnd.profiles import RESERVED, profile_parameters

__all__ = ["Parameter", "ParameterError", "check_value", "notebook_parameters",
           "parse_value", "read_notebook", "resolve_parameters"]

_ANNOTATION = re.compile(r"^(list\[)?(int|float|str|bool)(\])?( \| None)?$")
_RULE = re.compile(r"^(len\s*)?(>=|<=|!=|==|>|<)\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)$")
_OPS = {">=": operator.ge, "<=": operator.le, "!=": operator.ne, "==": operator.eq,
        ">": operator.gt, "<": operator.lt}
_SCALARS = {"int": int, "float": float, "str": str, "bool": bool}
_BOOLS = {"true": True, "yes": True, "on": True, "1": True,
          "false": False, "no": False, "off": False, "0": False}


class ParameterError(ValueError):
    """A parameter value a chapter does not accept (undeclared, wrong type or not allowed)."""


@dataclass(frozen=True)
class Parameter:
    """One parameter of a ``parameters`` cell.

    Attributes
    ----------
    name, annotation
        Variable name and annotation text (``"list[int] | None"``).
    default
        The declared value (a Python literal).
    help
        The comment after the constraints.
    rules
        The constraints, as written (``(">= 1", "len >= 1")``).
    """

    name: str
    annotation: str
    default: object
    help: str = ""
    rules: tuple[str, ...] = ()

    @property
    def type_name(self) -> str:
        """The annotation, e.g. ``"int | None"``."""
        return self.annotation

    @property
    def allowed(self) -> str:
        """What the parameter accepts, in words: the type and every constraint."""
        return "; ".join([self.annotation, *self.rules])

    def _kind(self) -> tuple[type, bool, bool]:
        match = _ANNOTATION.match(self.annotation)
        return _SCALARS[match.group(2)], bool(match.group(1)), bool(match.group(4))


def _fail(param: Parameter, value, why: str):
    raise ParameterError(f"parameter {param.name!r} got {value!r}: {why} "
                         f"(allowed: {param.allowed})")


def _scalar(param: Parameter, kind: type, value):
    """``value`` as ``kind`` (an int is a float), or ParameterError."""
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok or (kind is float and not math.isfinite(value)):
        _fail(param, value, f"expects {kind.__name__}")
    return value


def _check_rule(param: Parameter, rule: str, value) -> None:
    """Apply one constraint to a checked, non-None value (a list is checked element-wise)."""
    items = value if isinstance(value, list) else [value]
    if rule == "unique":
        if len(set(items)) != len(items):
            _fail(param, value, "elements repeat")
    elif rule.startswith("in "):
        allowed = rule[3:].split("|")
        bad = [v for v in items if str(v) not in allowed]
        if bad:
            _fail(param, value, f"{bad[0]!r} is not one of {', '.join(allowed)}")
    else:
        length, op, bound = _RULE.match(rule).groups()
        if length:
            if not _OPS[op](len(items), int(bound)):
                _fail(param, value, f"needs len {op} {bound}")
        else:
            bad = [v for v in items if not _OPS[op](v, float(bound))]
            if bad:
                _fail(param, value, f"{bad[0]!r} is not {op} {bound}")


def check_value(param: Parameter, value):
    """Return ``value`` checked against the parameter's type and constraints.

    An ``int`` is accepted for a ``float`` (converted); a tuple for a list.

    Raises
    ------
    ParameterError
        Naming the parameter, the value and what is allowed.
    """
    kind, is_list, optional = param._kind()
    if value is None:
        if not optional:
            _fail(param, value, "None is not allowed")
        return None
    if is_list:
        if not isinstance(value, (list, tuple)):
            _fail(param, value, f"expects a list of {kind.__name__}")
        value = [_scalar(param, kind, v) for v in value]
    else:
        value = _scalar(param, kind, value)
    for rule in param.rules:
        _check_rule(param, rule, value)
    return value


def _parse_scalar(param: Parameter, kind: type, text: str):
    text = text.strip()
    if kind is str:
        return text[1:-1] if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"" else text
    if kind is bool:
        if text.lower() not in _BOOLS:
            _fail(param, text, "expects bool (true or false)")
        return _BOOLS[text.lower()]
    try:
        return kind(text)
    except ValueError:
        _fail(param, text, f"expects {kind.__name__}")


def parse_value(param: Parameter, text: str):
    """Read a command-line string as the parameter's type, then :func:`check_value` it.

    Lists are ``2,4,8`` or ``[2, 4, 8]``; ``None``/``null`` is read as ``None`` (when the
    annotation allows it).
    """
    kind, is_list, optional = param._kind()
    raw = text.strip()
    if raw.lower() in ("none", "null") and optional:
        return None
    if is_list:
        inner = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
        items = [s for s in inner.split(",")] if inner.strip() else []
        if any(not s.strip() for s in items):
            _fail(param, text, "empty list element")
        return check_value(param, [_parse_scalar(param, kind, s) for s in items])
    return check_value(param, _parse_scalar(param, kind, raw))


# --------------------------------------------------------------------------------------------
# reading the parameters cell
# --------------------------------------------------------------------------------------------


def read_notebook(path: str | os.PathLike):
    """Read a chapter source (jupytext MyST ``.md``) or an ``.ipynb`` as an nbformat notebook.

    Raises
    ------
    FileNotFoundError, PermissionError, ValueError
        Naming the parameter ``notebook``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"notebook: {str(path)!r} does not exist or is not a file")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"notebook: {str(path)!r} is not readable")
    if path.suffix not in (".md", ".ipynb"):
        raise ValueError(f"notebook: {str(path)!r} must be a MyST markdown (.md) or .ipynb file")
    if path.suffix == ".md" and "format_name: myst" not in path.read_text("utf-8")[:1000]:
        raise ValueError(f"notebook: {str(path)!r} has no jupytext MyST header "
                         "(jupytext: text_representation: format_name: myst); see CONTRIBUTING.md")
    import jupytext

    try:
        nb = jupytext.read(path, fmt="md:myst" if path.suffix == ".md" else None)
    except Exception as err:  # jupytext raises many types on malformed input
        raise ValueError(f"notebook: cannot read {str(path)!r} as a notebook ({err})") from err
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def _parameters_source(nb, where: str) -> str:
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1 or cells[0].cell_type != "code":
        raise ValueError(f"notebook {where}: expected exactly one code cell tagged 'parameters', "
                         f"found {len(cells)}")
    return cells[0].source


def _declaration(stmt, comment: str, where: str) -> Parameter:
    """Return the :class:`Parameter` of ``name: annotation = literal  # {rules} help``."""
    name = stmt.target.id
    annotation = ast.unparse(stmt.annotation)
    if not _ANNOTATION.match(annotation):
        raise ValueError(f"notebook {where}: parameter {name!r} has annotation {annotation!r}; "
                         "use int, float, str, bool or list[...] of them, optionally | None")
    rules: tuple[str, ...] = ()
    if comment.startswith("{") and "}" in comment:
        text, comment = comment[1:].split("}", 1)
        rules = tuple(r.strip() for r in text.split(";") if r.strip())
        bad = [r for r in rules if r != "unique" and not r.startswith("in ")
               and not _RULE.match(r)]
        if bad:
            raise ValueError(f"notebook {where}: parameter {name!r}: constraints {bad} not "
                             "understood (>= x, > x, <= x, < x, != x, in a|b, len >= n, unique)")
    try:
        default = ast.literal_eval(stmt.value)
    except (ValueError, SyntaxError, TypeError) as err:
        raise ValueError(f"notebook {where}: the default of {name!r} is not a literal") from err
    return Parameter(name, annotation, default, comment.strip(), rules)


def parameters_of_source(source: str, where: str = "<notebook>") -> dict[str, Parameter]:
    """Parameters declared by the source text of a ``parameters`` cell, in order."""
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise ValueError(f"notebook {where}: the parameters cell is not valid Python ({err})") \
            from err
    comments = {tok.start[0]: tok.string.lstrip("#").strip()
                for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT}
    params = {}
    for stmt in tree.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                and stmt.value is not None):
            raise ValueError(f"notebook {where}: line {stmt.lineno} of the parameters cell is "
                             "not `name: type = value  # comment`")
        params[stmt.target.id] = _declaration(stmt, comments.get(stmt.end_lineno, ""), where)
    return params


def notebook_parameters(notebook) -> dict[str, Parameter]:
    """Return ``{name: Parameter}`` of a chapter (a path, or a notebook already read)."""
    if isinstance(notebook, (str, os.PathLike)):
        where, notebook = str(notebook), read_notebook(notebook)
    else:
        where = "<notebook>"
    return parameters_of_source(_parameters_source(notebook, where), where)


def resolve_parameters(stem: str, declared: dict[str, Parameter], profile: str,
                       parameters: dict | None) -> dict:
    """Every declared parameter's value: default, then the profile's, then ``parameters``.

    Returns the values without the runner's ``artifacts_dir`` and ``profile``.

    Raises
    ------
    ParameterError
        For a runner parameter, an undeclared name (listing the declared ones) or a value the
        declaration does not allow; the message says where the value came from.
    """
    if parameters is not None and not isinstance(parameters, dict):
        raise TypeError(f"parameters must be a dict {{name: value}}, "
                        f"got {type(parameters).__name__}")
    values = {n: p.default for n, p in declared.items() if n not in RESERVED}
    sources = [(f"profile {profile!r} (mnistnd/profiles.yaml)", profile_parameters(stem, profile)),
               ("parameters", dict(parameters or {}))]
    for origin, given in sources:
        for name, value in given.items():
            if name in RESERVED:
                option = "--artifacts-dir" if name == "artifacts_dir" else "--profile"
                raise ParameterError(f"parameter {name!r} is set by the runner; use the {option} "
                                     "option (or the function argument of the same name)")
            if name not in declared:
                known = ", ".join(n for n in declared if n not in RESERVED) or "(none)"
                raise ParameterError(f"parameter {name!r} (from {origin}) is not declared in the "
                                     f"parameters cell of chapter {stem!r}; declared: {known}")
            try:
                values[name] = check_value(declared[name], value)
            except ParameterError as err:
                raise ParameterError(f"{err} (from {origin}, chapter {stem!r})") from None
    return values
