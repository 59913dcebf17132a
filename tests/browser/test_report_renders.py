"""A site report renders in a real browser: every chart has a size and draws something; a screenshot is kept."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import pytest

from orchestration.reports import render_site_report
from orchestration.reports.sample import MEASURES, quarters, sample_cases, sample_quality, sample_results

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# Inline, optional, test-only: records each chart's rendered box so the dumped DOM shows the layout result.
PROBE = """<script>
document.querySelectorAll('svg[data-chart]').forEach(function (s) {
  var r = s.getBoundingClientRect(), b = s.getBBox();
  s.setAttribute('data-rendered', Math.round(r.width) + 'x' + Math.round(r.height));
  s.setAttribute('data-drawn', Math.round(b.width) + 'x' + Math.round(b.height));
  s.setAttribute('data-shapes', s.querySelectorAll('path, circle, line').length);
});
</script>"""


def png_facts(data: bytes) -> tuple[int, int, int, bytes]:
    """Width, height and bit depth from IHDR, and the decompressed image stream (still filtered)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, []
    width = height = depth = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth = struct.unpack(">IIB", body[:9])
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    return width, height, depth, zlib.decompress(b"".join(idat))


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> Path:
    periods = quarters(2025, 4)
    sites = [f"S{i:03d}" for i in range(30)]
    results, curves = sample_results(sites, periods, red_share=0.0)
    cases = sample_cases("S004", periods, cases=800, odds={"mortality_30d": 2.0})
    html = render_site_report("S004", "Lakeshore University Hospital", periods[-1], results, curves, cases,
                              sample_quality("S004", periods, results), MEASURES,
                              "General Surgery Quality Collaborative", generated_at="2026-03-16 09:00 UTC")
    path = tmp_path_factory.mktemp("report") / "site_report.html"
    path.write_text(html, encoding="utf-8")
    return path


def test_every_chart_of_the_site_report_renders_with_a_size_in_chromium(report_file, run_chromium, tmp_path):
    html = report_file.read_text(encoding="utf-8")
    expected = len(re.findall(r"<svg [^>]*data-chart=", html))
    assert expected == 5 * len(MEASURES)
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    done = run_chromium(probed.as_uri(), "--dump-dom", "--window-size=1280,4000")
    assert done.returncode == 0, done.stderr[-2000:]
    svgs = re.findall(r"<svg [^>]*>", done.stdout)
    assert len(svgs) == expected
    for tag in svgs:
        kind = re.search(r'data-chart="(\w+)"', tag).group(1)
        assert float(re.search(r'\swidth="([\d.]+)"', tag).group(1)) > 0
        assert float(re.search(r'\sheight="([\d.]+)"', tag).group(1)) > 0
        w, h = map(int, re.search(r'data-rendered="(\d+)x(\d+)"', tag).groups())
        assert w > 200 and h > 100, (kind, w, h)               # laid out at a readable size
        dw, dh = map(int, re.search(r'data-drawn="(\d+)x(\d+)"', tag).groups())
        assert dw > 100 and dh > 50, (kind, dw, dh)            # its drawing has extent
        assert int(re.search(r'data-shapes="(\d+)"', tag).group(1)) >= 5, kind


def test_a_screenshot_of_the_site_report_is_saved_and_not_blank(report_file, run_chromium):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "site_report.png"
    shot.unlink(missing_ok=True)
    done = run_chromium(report_file.as_uri(), f"--screenshot={shot}", "--window-size=1280,4000")
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.exists()
    data = shot.read_bytes()
    width, height, depth, pixels = png_facts(data)
    assert (width, height, depth) == (1280, 4000, 8)
    # a blank page compresses to almost nothing; charts, text and colour do not
    assert len(data) > 150_000
    assert len(set(pixels)) > 200
    assert pixels.count(0) < 0.98 * len(pixels)
