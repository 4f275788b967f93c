"""The package layout rules: no import cycle between modules (function-level imports included),
no module over 400 lines, no plugin importing another plugin, the user cache without the demo."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mdf_io", "mpirecon", "baselines", "mpirecon_dernet")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict:
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def imports(name: str, path: Path, known: dict) -> set:
    """Modules of ``known`` that ``path`` imports anywhere at run time (module level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and ast.unparse(block.test).endswith("TYPE_CHECKING") for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in typing_only:  # annotations only, never imported at run time
            continue
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            candidates = [base] + [f"{base}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        out |= {c for c in candidates if c in known and c != name}
    return out


def cycles(graph: dict) -> list:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def graph_without_packages(known: dict) -> dict:
    """Module -> imported modules, a package's ``__init__`` counted only for what it imports itself."""
    return {name: imports(name, path, known) for name, path in known.items()}


def test_no_import_cycle():
    graph = graph_without_packages(modules())
    # a package __init__ re-exporting its submodules is not a cycle with them: drop package -> child edges
    for name in graph:
        graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    assert cycles(graph) == []


def test_no_module_over_400_lines():
    long = {name: n for name, p in modules().items() if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


#: each plugin and the modules only it uses
PLUGINS = {
    "pinv": {"baselines.pinv"}, "kaczmarz": {"baselines.kaczmarz"}, "cgnr": {"baselines.cgnr"},
    "admm": {"baselines.admm"},
    "ppmpi": {"baselines.learned.ppmpi", "baselines.learned.denoiser_training"},
    "dip": {"baselines.learned.dip", "baselines.learned.dip_generator"},
    "admm_net": {"baselines.learned.admm_net", "baselines.learned.admm_net_model", "baselines.learned.admm_net_training"},
    "deq_mpi": {"baselines.learned.deq_mpi", "baselines.learned.deq_mpi_model", "baselines.learned.deq_mpi_training"},
    "dernet": {name for name in modules() if name.startswith("mpirecon_dernet.")},
}


def test_no_plugin_imports_another_plugin_or_builds_one_through_the_registry():
    known = modules()
    owned = set().union(*PLUGINS.values())
    assert {n for n in known if n.startswith(("baselines.", "mpirecon_dernet."))} - owned <= {"baselines.learned"}
    for plugin, own in PLUGINS.items():
        for name in own:
            foreign = {m for m in imports(name, known[name], known) if m in owned - own}
            assert not foreign, f"{name} ({plugin}) imports {foreign}"
            assert "mpirecon.registry" not in imports(name, known[name], known), f"{name} uses the registry"


def test_user_cache_does_not_import_the_demo():
    known = modules()
    assert "mpirecon.demo" not in imports("mpirecon.cache", known["mpirecon.cache"], known)
