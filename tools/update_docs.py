"""`make docs`: regenerate the README's model table from the registry."""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from backend.registry import markdown_table  # noqa: E402

START, END = "<!-- models:start -->", "<!-- models:end -->"


def render(text: str) -> str:
    """README text with the block between the markers replaced."""
    return re.sub(f"{START}.*?{END}", f"{START}\n{markdown_table()}\n{END}", text, flags=re.S)


if __name__ == "__main__":
    readme = ROOT / "README.md"
    readme.write_text(render(readme.read_text()))
    print("README model table regenerated")
