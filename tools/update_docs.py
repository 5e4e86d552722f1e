"""`make docs`: regenerate the README's model table from the registry."""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from backend.registry import markdown_table  # noqa: E402

START, END = "<!-- models:start -->", "<!-- models:end -->"
W_START, W_END = "<!-- weights:start -->", "<!-- weights:end -->"


def weights_table() -> str:
    """One row per shipped weights file, from its own metadata."""
    import json
    from backend.recipes import RECIPES
    from backend.registry import get_model
    from backend.weights import read_metadata
    rows = ["| file | weights set | trained on | recipe | started from | steps | wall time, device "
            "| validation PSNR vs bicubic |", "|---|---|---|---|---|---|---|---|"]
    for r in RECIPES:
        path = get_model(r.model).weights_path(r.scale, r.weights)
        if not path.is_file():
            continue
        m = read_metadata(path)
        rec = json.loads(m["recipe"])
        gain = float(m["val_psnr_norm"]) - float(m["val_bicubic_psnr_norm"])
        init = m.get("initialised_from", "random").split(" (")[0]
        rows.append(f"| `{path.name}` | {r.weights} | {', '.join(rec['domains'])} | {rec['loss']}, Adam lr {rec['lr']:g} "
                    f"({rec['schedule']}{' from step ' + str(rec['decay_from']) if rec.get('decay_from') else ''}), batch {rec['batch']} x {rec['patch']}² HR"
                    f"{', photometric ' + format(rec['photometric'], 'g') if rec.get('photometric') else ''}, seed {rec['seed']} | "
                    f"{'`' + init + '`' if init != 'random' else 'random'} | "
                    f"{m['steps']} | {m['wall_minutes']} min, {m['device'].split(' (')[0]} | {gain:+.2f} dB |")
    return "\n".join(rows)


def render(text: str) -> str:
    """README text with the generated blocks between their markers replaced."""
    text = re.sub(f"{START}.*?{END}", lambda _m: f"{START}\n{markdown_table()}\n{END}", text, flags=re.S)
    return re.sub(f"{W_START}.*?{W_END}", lambda _m: f"{W_START}\n{weights_table()}\n{W_END}", text, flags=re.S)


if __name__ == "__main__":
    readme = ROOT / "README.md"
    readme.write_text(render(readme.read_text()))
    print("README model table regenerated")
