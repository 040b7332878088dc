"""lib/preset.c and docs/quality.md agree with the recorded preset search (docs/data): BEST
is, per NFE, the configuration the recorded stage 2 chooses, and the generated tables of
docs/quality.md are what the recorded results give. Changing one without the other fails."""
import glob
import gzip
import os
import re
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import search  # noqa: E402


@pytest.fixture()
def recorded(tmp_path, monkeypatch):
    files = glob.glob(os.path.join(REPO, "docs", "data", "presets_*.json.gz"))
    if not files:
        pytest.skip("docs/data has no recorded preset search")
    for f in files:
        with gzip.open(f, "rb") as src, open(tmp_path / os.path.basename(f)[:-3], "wb") as dst:
            dst.write(src.read())
    monkeypatch.setattr(search, "OUT_DIR", str(tmp_path))
    return tmp_path


def test_best_is_the_recorded_choice(recorded):
    results = {m: search.json.load(open(search.result_path(m + "_select")))["rows"]
               for m in search.MODELS}
    nfes = sorted({r["nfe"] for r in results[search.MODELS[0]]})
    assert nfes == [5, 6, 8, 10, 15, 20]
    for nfe in nfes:
        worst, d = search.ranked_lib(results, nfe)[0]
        chosen = next(iter(d.values()))[1]
        preset = search.preset_config(0, nfe)
        for key in ("method", "spacing", "order", "lof", "tau_end", "corrector"):
            assert (chosen.get(key) or False) == (preset[key] or False), (nfe, key, chosen, preset)


def test_quality_md_tables_are_the_recorded_results(recorded):
    page = open(os.path.join(REPO, "docs", "quality.md")).read()
    block = re.search(r"<!-- presets:begin[^>]*-->\n(.*?)<!-- presets:end -->", page, re.S)
    assert block, "docs/quality.md has no presets block"
    assert block.group(1).rstrip("\n") == search.report_markdown().rstrip("\n")
