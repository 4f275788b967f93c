"""``mpirecon methods [NAME]``: list the registered methods (metadata only: no plugin and no torch
is imported), or describe one (imports that plugin): parameters, training settings, capabilities."""
from __future__ import annotations

import typing

#: pydantic/annotated-types constraint attributes and how they are shown
_CONSTRAINTS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="), ("min_length", "min length"),
                ("max_length", "max length"), ("pattern", "matches"))


def add_parser(sub) -> None:
    """Register the ``methods`` sub-command."""
    p = sub.add_parser("methods", help="list registered reconstruction methods, or describe one")
    p.add_argument("name", nargs="?", default=None,
                   help="method to describe: parameters, training settings and capabilities")


def run(args) -> int:
    """Print the list (name, module:Class, distribution) or one method's description."""
    from mpirecon.registry import get_reconstructor_class, plugin_infos

    if args.name is None:
        infos = plugin_infos()
        width = max((len(i.name) for i in infos), default=4)
        for info in infos:
            print(f"{info.name:<{width}}  {info.target}" + (f"  ({info.distribution})" if info.distribution else ""))
        print("\n`mpirecon methods NAME` describes a method (parameters, capabilities)")
        return 0
    cls = get_reconstructor_class(args.name)
    print(f"{args.name}: {cls.description}")
    caps = cls.capabilities
    flags = (("needs a system matrix", caps.needs_system_matrix), ("needs weights", caps.needs_weights),
             ("batches of frames", caps.supports_batches), ("GPU (device=cuda)", caps.supports_gpu),
             ("trainable (mpirecon train)", caps.trainable), ("3D grids", caps.supports_3d))
    print("capabilities: " + "; ".join(f"{label}: {'yes' if on else 'no'}" for label, on in flags))
    if not caps.supports_3d:
        print("3D calibrations: reconstructs one slice at a time (run --slice z=K; a 3D calibration is "
              "refused with that hint)")
    print(f"\nparameters (mpirecon run --method {args.name} --param KEY=VALUE):")
    print("\n".join(field_lines(cls.Config)))
    if cls.TrainSettings is not None:
        print(f"\ntraining settings (mpirecon train --method {args.name} --set KEY=VALUE):")
        print("\n".join(field_lines(cls.TrainSettings)))
    return 0


def field_lines(model) -> list[str]:
    """One line per field of a pydantic model: name, type, default, constraints, description."""
    lines = []
    for name, info in model.model_fields.items():
        limits = [f"{sym} {getattr(m, attr)}" for m in info.metadata for attr, sym in _CONSTRAINTS
                  if getattr(m, attr, None) is not None]
        text = f"  {name} ({_type_name(info.annotation)}, default {info.get_default(call_default_factory=True)!r}"
        text += "".join(f", {c}" for c in limits) + ")"
        lines.append(text + (f": {info.description}" if info.description else ""))
    return lines


def _type_name(annotation) -> str:
    """``int``, ``Optional[float]``, ``tuple[str, ...]``, ``Literal['a', 'b']`` for an annotation;
    the members of a union joined by "or" (``float > 0 or 'auto'``), with their constraints."""
    if typing.get_origin(annotation) is typing.Union and type(None) not in typing.get_args(annotation):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if typing.get_origin(annotation) is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        limits = [f"{sym} {getattr(m, attr)}" for info in meta for m in getattr(info, "metadata", [info])
                  for attr, sym in _CONSTRAINTS if getattr(m, attr, None) is not None]
        return " ".join([_type_name(base)] + limits)
    if typing.get_origin(annotation) is typing.Literal:
        return ", ".join(repr(a) for a in typing.get_args(annotation))
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")
