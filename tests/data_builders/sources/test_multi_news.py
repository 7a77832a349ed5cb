from data_builders.records import Record
from data_builders.sources import multi_news
from data_builders.sources.base import load


def test_articles_split_and_numbered_summary_without_dash(jsonl):
    path = jsonl("multi_news", [{"document": "Bridge approved. ||||| Work starts in spring. |||||",
                                 "summary": "– A bridge was approved; work starts in spring."}])
    assert load(multi_news.SPEC, path).records == [
        Record(multi_news.INSTRUCTION, "Article 1:\nBridge approved.\n\nArticle 2:\nWork starts in spring.",
               "A bridge was approved; work starts in spring.", "multi_news", 0, "non-commercial", False),
    ]
