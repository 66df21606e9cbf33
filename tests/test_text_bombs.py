"""One hostile entry cannot eat the CPU: ``html_to_text`` reads markup in time linear in its
size, and reads at most ``MAX_HTML`` of it, saying so in the text (bench/text.py shows the
growth; these are guards, with bounds far above what the code needs)."""

from __future__ import annotations

import pytest
from guards import finishes

from monitor.collectors import text
from monitor.collectors.text import CUT_MARK, MAX_HTML, MAX_TEXT, html_to_text

pytestmark = pytest.mark.chaos


@pytest.mark.parametrize("markup", [
    "<p>word word</p>" * 65_000,             # a break beside each block (br, li: the same)
    "<div>" * 200_000,                       # nested a million characters deep
    "<script>x</script>a" * 55_000,          # dropped, not edited out
], ids=["paragraphs", "nested", "scripts"])
def test_a_megabyte_of_markup_is_read_in_one_pass(markup: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text, "MAX_HTML", 2_000_000)  # the walk itself, not the cut
    assert len(markup) >= 1_000_000
    result = finishes(lambda: html_to_text(markup))
    assert CUT_MARK not in result and len(result) <= MAX_TEXT


def test_markup_past_the_limit_is_not_read_and_the_text_says_so() -> None:
    huge = "<p>Angry about the redesign.</p>" + "<p>" + "x" * (MAX_HTML + 10) + "</p>"
    result = finishes(lambda: html_to_text(huge))
    assert result.startswith("Angry about the redesign.")
    assert result.endswith(CUT_MARK) and len(result) <= MAX_TEXT
    long_text = "<p>" + "word " * (MAX_HTML // 5 + 10) + "</p>"  # text past MAX_TEXT too
    cut = html_to_text(long_text)
    assert cut.endswith("\n\n" + CUT_MARK) and len(cut) <= MAX_TEXT
    assert not html_to_text("<p>short</p>").endswith(CUT_MARK)
    assert html_to_text("x" * (MAX_HTML + 10)) == "x" * MAX_TEXT  # plain text: no markup read


def test_the_text_is_what_it_was() -> None:
    """Blocks apart, breaks kept, scripts, styles, templates and comments dropped."""
    markup = ("<div>intro<p>first<br>line</p><script>alert(1)</script><style>p{}</style>"
              "<template>t</template><noscript>n</noscript><!-- c --><![CDATA[data]]>"
              "<ul><li>one</li><li>two &amp; three</li></ul>AT&T</div>")
    assert html_to_text(markup) == "intro\n\nfirst\nline\n\ndata\n\none\n\ntwo & three\n\nAT&T"
