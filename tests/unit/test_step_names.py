"""Step names are written once, in core/steps.py: every `step=` a command passes, and every
default a function gives its `step`, is a `Step` member, so an error's "failed in step 'x'",
the progress lines and the history can only name steps that exist."""

from __future__ import annotations

import ast
from pathlib import Path

from deployer.core.steps import Step

PACKAGE = Path(__file__).resolve().parents[2] / "deployer"


def free_step_strings() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "steps.py" and path.parent.name == "core":
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(PACKAGE.parent)
        for node in ast.walk(tree):
            literals = []
            if isinstance(node, ast.keyword) and node.arg == "step":
                literals.append(node.value)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                positional = args.posonlyargs + args.args
                pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True))
                pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
                literals += [default for arg, default in pairs if arg.arg == "step"]
            elif isinstance(node, ast.BoolOp) and any(isinstance(v, ast.Name) and v.id == "step" for v in node.values):
                literals += node.values
            for value in literals:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.append(f"{where}:{value.lineno}: {value.value!r}")
    return found


def test_every_step_name_comes_from_the_step_enum():
    assert free_step_strings() == [], "use a Step member (core/steps.py)"


def test_step_names_are_unique_and_lower_case():
    values = [s.value for s in Step]
    assert len(values) == len(set(values))
    assert all(v == v.lower() and v.strip() == v for v in values)
