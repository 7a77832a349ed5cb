from data_builders.records import Record
from data_builders.sources import multi_news
from data_builders.sources.base import load


def test_articles_split_and_numbered_summary_without_dash(jsonl):
    path = jsonl(
        "multi_news",
        [
            {
                "document": "Bridge approved. ||||| Work starts in spring. |||||",
                "summary": "– A bridge was approved; work starts in spring.",
            }
        ],
    )
    assert load(multi_news.SPEC, path).records == [
        Record(
            instruction=multi_news.INSTRUCTION,
            input="Article 1:\nBridge approved.\n\nArticle 2:\nWork starts in spring.",
            output="A bridge was approved; work starts in spring.",
            source="multi_news",
            row=0,
            licence="non-commercial",
            llm_generated=False,
        ),
    ]


def test_the_hubs_line_aligned_files_pair_line_by_line_and_unequal_files_are_named(tmp_path):
    """The Hub's data/train.src.cleaned and data/train.tgt: one row a line, NEWLINE_CHAR for newlines; a line
    separator other than "\\n" inside a line does not split it."""
    from pathlib import PurePosixPath

    import pytest

    from data_builders.errors import DataError

    src, tgt = tmp_path / "train.src.cleaned", tmp_path / "train.tgt"
    src.write_bytes("First.NEWLINE_CHARSecond\u2028still one line. ||||| Other.\nB.\n".encode())
    tgt.write_bytes("– A.\n– B.\n".encode())
    files = [
        (PurePosixPath("multi_news@c/data/train.src.cleaned"), src),
        (PurePosixPath("multi_news@c/data/train.tgt"), tgt),
    ]
    rows = [row for _, row in multi_news.line_pairs(files)]
    assert rows == [
        {"document": "First.\nSecond\u2028still one line. ||||| Other.", "summary": "– A."},
        {"document": "B.", "summary": "– B."},
    ]
    tgt.write_bytes("– A.\n".encode())
    with pytest.raises(DataError, match=r"multi_news@c/data/train.src.cleaned has more lines than its pair"):
        list(multi_news.line_pairs(files))
