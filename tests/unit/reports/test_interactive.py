"""The interactive Pareto plot: its data object, the inline SVG and the JSON blob of its points."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pyarrow as pa
import pytest

from disentune.reports.build import pareto_table
from disentune.reports.html import ModelSection, render_index
from disentune.reports.interactive import (
    InteractiveParetoData,
    interactive_pareto_data,
    point_records,
    script_json,
)
from disentune.reports.plots import ParetoPlotData, pareto_plot_data
from disentune.reports.svg import pareto_svg

from .synthetic import synthetic_curves, synthetic_trials

SVG = "{http://www.w3.org/2000/svg}"
BREAKOUT = "</script><script>window.pwned=1</script><!-- & \u2028"


def _points(svg: str) -> list[ET.Element]:
    return [a for a in ET.fromstring(svg).iter(f"{SVG}a") if "point" in a.get("class", "").split()]


def _data(n: int = 5, *, objectives: dict | None = None, ranges: dict | None = None, **kw) -> InteractiveParetoData:
    """n points; point 0 and 1 on the front, 1 the knee."""
    fid = np.linspace(10.0, 50.0, n)
    mig = np.linspace(0.1, 0.5, n)
    objectives = objectives or {"fid": fid, "mig": mig}
    directions = {"fid": "min", "mig": "max", "sharpness": "max"}
    front = np.arange(n) < 2
    plot = ParetoPlotData(fid, mig, front, np.arange(n) == 1, [f"#{i} label" for i in range(n)], [""] * n, "t")
    return InteractiveParetoData(
        plot=plot, trial_number=np.arange(100, 100 + n), objectives=objectives,
        directions={k: directions[k] for k in objectives}, rank=np.where(front, 0, 1),
        params=[[("lambda_mi", 0.1 * i), ("variant", "beta_tcvae")] for i in range(n)],
        trial_id=[f"t{i}" for i in range(n)], ranges=ranges or {}, **kw)


def test_script_json_cannot_close_its_script_and_reads_back_unchanged():
    value = [{"trial_id": BREAKOUT, "rows": [["a", "x</SCRIPT >y"]]}]
    text = script_json(value)
    assert not re.search(r"[<>&]", text) and text.isascii()
    assert json.loads(text) == value
    with pytest.raises(ValueError):
        script_json([float("nan")])


class _Page(HTMLParser):
    """What a browser's tokenizer sees: start tags, ids and each script's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[tuple[dict, str]] = []
        self._in_script: dict | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)
            self.scripts.append((self._in_script, ""))

    def handle_data(self, data):
        if self._in_script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None


@pytest.fixture(scope="module")
def page_parts():
    trials = synthetic_trials(30)
    rows = trials.to_pylist()
    rows[3]["trial_id"] = BREAKOUT
    rows[3]["variant"] = "<u>variant</u>"
    trials = pa.Table.from_pylist(rows, schema=trials.schema)
    pareto = pareto_table(trials)
    data = interactive_pareto_data(trials, pareto, pareto_plot_data(trials, pareto, "title <i>"))
    front = [r for r in pareto.to_pylist() if r["on_front"]]
    models = [ModelSection(title=f"model {r['trial_number']}", scores=[("fid", "1")], traversal_png=None,
                           trial_number=r["trial_number"]) for r in front]
    suite_rows = [{"trial_number": r["trial_number"], "variant": "v", "status": "ok", "trial_id": r["trial_id"],
                   "dci": 0.5} for r in pareto.to_pylist()]
    page = render_index(title="t", summary=[], figures=[], trials=trials,
                        front_ids={r["trial_id"] for r in front}, models=models,
                        suite=(suite_rows, ["trial_number", "variant", "dci"]),
                        pareto=data, curves=synthetic_curves(trials))
    parsed = _Page()
    parsed.feed(page)
    return trials, pareto, data, page, parsed


def test_hostile_values_stay_inside_the_json_blob_and_read_back(page_parts):
    trials, _, data, page, parsed = page_parts
    assert [a.get("type") for a, _ in parsed.scripts] == ["application/json", None]
    assert "pareto-tooltip" in parsed.scripts[1][1]  # the page's own script, intact
    blob = json.loads(parsed.scripts[0][1])
    assert blob == point_records(data)
    hostile = next(p for p in blob if p["trial"] == 3)
    assert ["trial_id", BREAKOUT] in hostile["rows"] and ["variant", "<u>variant</u>"] in hostile["rows"]
    assert "window.pwned" not in parsed.scripts[1][1]
    assert not any(tag in ("u", "i") for tag, _ in parsed.tags)
    assert "&lt;u&gt;variant&lt;/u&gt;" in page and "<i>" not in page


def test_every_successful_trial_has_one_section_and_the_tables_link_to_it(page_parts):
    trials, pareto, _, page, parsed = page_parts
    ok = sorted(r["trial_number"] for r in trials.to_pylist() if r["status"] == "ok")
    failed = [r["trial_number"] for r in trials.to_pylist() if r["status"] != "ok"]
    assert failed  # the synthetic run has failures, which get no section
    ids = [a["id"] for _, a in parsed.tags if a.get("id", "").startswith("trial-")]
    assert sorted(ids) == sorted(f"trial-{n}" for n in ok)
    sections = {a["id"]: a["class"] for t, a in parsed.tags if t == "section" and "id" in a}
    front = {r["trial_number"] for r in pareto.to_pylist() if r["on_front"]}
    assert {k for k, v in sections.items() if v == "model"} == {f"trial-{n}" for n in front}
    assert len([v for v in sections.values() if v == "trial"]) == len(ok) - len(front)
    links = [a["href"] for t, a in parsed.tags if t == "a" and a.get("href", "").startswith("#trial-")]
    # one link per point in the plot, one per row in the trials table, one per suite row
    assert sorted(links) == sorted([f"#trial-{n}" for n in ok] * 3)
    for row in trials.to_pylist():  # the trials table links the id and keeps the number a plain cell
        assert f'<td class="num">{row["trial_number"]}</td>' in page
        if row["status"] == "ok" and row["trial_id"] == f"t{row['trial_number']:04d}":
            assert f'<td class=""><a href="#trial-{row["trial_number"]}">{row["trial_id"]}</a></td>' in page


def test_sections_carry_parameters_suite_values_and_curves(page_parts):
    _, pareto, data, page, _ = page_parts
    dominated = next(r["trial_number"] for r in pareto.to_pylist() if not r["on_front"])
    section = page[page.index(f'id="trial-{dominated}"'):]
    section = section[:section.index("</section>")]
    i = int(np.flatnonzero(data.trial_number == dominated)[0])
    assert f"<b>lambda_mi</b>: {dict(data.params[i])['lambda_mi']:.4g}" in section
    assert "<b>dci</b>: 0.5" in section and "loss_total" in section and "<polyline" in section
    assert "<img" not in section  # no traversal for a dominated trial
    knee = next(r["trial_number"] for r in pareto.to_pylist() if r["knee"])
    section = page[page.index(f'id="trial-{knee}"'):]
    section = section[:section.index("</section>")]
    assert section.startswith(f'id="trial-{knee}"><h3>model {knee}</h3>')  # the front model's own section
    assert "<b>lambda_tc</b>" in section and "<b>dci</b>: 0.5" in section and "loss_total" in section


def test_one_linked_point_per_trial_in_the_svg(page_parts):
    _, pareto, data, _, _ = page_parts
    svg = pareto_svg(data)
    points = _points(svg)
    assert len(points) == pareto.num_rows == len(data)
    records = point_records(data)
    for a in points:
        circles = list(a.iter(f"{SVG}circle"))
        assert len(circles) == 1
        record = records[int(a.get("data-i"))]
        assert a.get("href") == record["href"] == f"#trial-{a.get('data-trial')}"
    assert sum("front" in a.get("class") for a in points) == int(data.plot.on_front.sum())
    assert ET.fromstring(svg).find(f".//{SVG}path[@class='front-line']") is not None
    assert len(ET.fromstring(svg).findall(f".//{SVG}circle[@class='knee']")) == 1


def test_axes_follow_the_directions_of_the_objectives():
    data = _data(5)
    cx = {int(a.get("data-i")): float(next(a.iter(f"{SVG}circle")).get("cx")) for a in _points(pareto_svg(data))}
    cy = {int(a.get("data-i")): float(next(a.iter(f"{SVG}circle")).get("cy")) for a in _points(pareto_svg(data))}
    assert [cx[i] for i in range(5)] == sorted(cx.values())  # fid grows to the right
    assert [cy[i] for i in range(5)] == sorted(cy.values(), reverse=True)  # mig grows upwards
    labels = [t.text for t in ET.fromstring(pareto_svg(data)).iter(f"{SVG}text") if "axis-label" in t.get("class", "")]
    assert labels == ["fid (lower is better)", "mig (higher is better)"]


def _bars(svg: str) -> list[ET.Element]:
    return [p for p in ET.fromstring(svg).iter(f"{SVG}path") if p.get("class") == "range"]


def test_replicate_ranges_are_drawn_as_error_bars_only_where_present():
    assert _bars(pareto_svg(_data(5))) == []
    low = np.array([8.0, np.nan, 25.0, 35.0, 45.0])
    high = np.array([12.0, np.nan, 35.0, 45.0, 55.0])
    data = _data(5, ranges={"fid": (low, high), "mig": (np.full(5, 0.05), np.full(5, 0.6))})
    svg = pareto_svg(data)
    bars = _bars(svg)
    assert sorted((b.get("data-axis"), int(b.get("data-i"))) for b in bars) == sorted(
        [("fid", i) for i in (0, 2, 3, 4)] + [("mig", i) for i in range(5)])
    circles = {int(a.get("data-i")): next(a.iter(f"{SVG}circle")) for a in _points(svg)}
    for bar in bars:
        if bar.get("data-axis") == "fid":  # the horizontal bar spans the point
            xs = [float(v) for v in re.findall(r"[MH](-?[\d.]+)", bar.get("d"))]
            assert min(xs) < float(circles[int(bar.get("data-i"))].get("cx")) < max(xs)
    assert "replicate range" in svg
    record = point_records(data)[0]
    assert ["fid", "10 (replicates 8 to 12)"] in record["rows"]


def test_three_objectives_two_on_the_axes_the_third_as_colour():
    n = 5
    objectives = {"fid": np.linspace(10, 50, n), "mig": np.linspace(0.1, 0.5, n),
                  "sharpness": np.arange(n, dtype=float)}
    data = _data(n, objectives=objectives, axes=("mig", "sharpness"))
    assert data.colour == "fid" and not data.front_only_objectives
    svg = pareto_svg(data)
    root = ET.fromstring(svg)
    labels = [t.text for t in root.iter(f"{SVG}text") if "axis-label" in t.get("class", "")]
    assert labels == ["mig (higher is better)", "sharpness (higher is better)"]
    fills = [next(a.iter(f"{SVG}circle")).get("fill") for a in sorted(_points(svg), key=lambda a: int(a.get("data-i")))]
    assert len(set(fills)) == n and fills[0] == "#fde725"  # lowest fid: the better, yellow end
    assert root.find(f".//{SVG}g[@class='colourbar']") is not None
    assert root.find(f".//{SVG}path[@class='front-line']") is None  # a projection has no staircase
    assert [r[0] for r in point_records(data)[0]["rows"][:3]] == ["fid", "mig", "sharpness"]


def test_the_data_object_refuses_what_it_cannot_draw():
    with pytest.raises(ValueError, match="not one of the objectives"):
        _data(3, axes=("fid", "udr"))
    with pytest.raises(ValueError, match="entries"):
        _data(3, ranges={"fid": (np.zeros(2), np.zeros(2))})
    with pytest.raises(ValueError, match="2 or 3"):
        _data(3, objectives={"fid": np.zeros(3)})


def test_ranges_are_read_from_min_and_max_columns_of_the_trials_table():
    trials = synthetic_trials(12)
    fid = np.array(trials["fid"].to_pylist(), dtype=float)
    trials = trials.set_column(trials.schema.get_field_index("fid_min"), "fid_min", pa.array(fid - 1.0))
    trials = trials.set_column(trials.schema.get_field_index("fid_max"), "fid_max", pa.array(fid + 2.0))
    pareto = pareto_table(trials)
    data = interactive_pareto_data(trials, pareto, pareto_plot_data(trials, pareto, "t"))
    assert set(data.ranges) == {"fid"}
    np.testing.assert_allclose(data.ranges["fid"][1] - data.objectives["fid"], 2.0)
    np.testing.assert_array_equal(data.objectives["fid"], data.plot.x)  # the PNG's values
    assert len(_bars(pareto_svg(data))) == len(data)
