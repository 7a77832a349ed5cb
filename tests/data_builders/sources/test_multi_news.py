from data_builders.records import Record
from data_builders.sources import multi_news
from data_builders.sources.base import load


def test_articles_split_and_numbered_summary_without_dash(jsonl):
    path = jsonl("multi_news", [{"document": "Bridge approved. ||||| Work starts in spring. |||||",
                                 "summary": "– A bridge was approved; work starts in spring."}])
    assert load(multi_news.SPEC, path).records == [
        Record(instruction=multi_news.INSTRUCTION,
               input="Article 1:\nBridge approved.\n\nArticle 2:\nWork starts in spring.",
               output="A bridge was approved; work starts in spring.", source="multi_news", row=0, licence="non-commercial", llm_generated=False),
    ]
