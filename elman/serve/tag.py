"""Taggers: stateless requests, each batch of concurrent requests tagged in one pass."""

from __future__ import annotations

from elman.serve.config import Limits
from elman.serve.served import RequestError, Served, check_count, check_steps, split_back
from elman.tasks.tag.run import TagRun


class TagModel(Served):
    """`POST /tag`: tags of sentences (word lists, or texts split on whitespace). No
    sessions: a tagger reads every sentence in both directions."""

    endpoints = ("tag",)

    def __init__(self, name: str, run: TagRun) -> None:
        super().__init__(name, run)
        self.tagger = run

    def parse_request(self, endpoint: str, body, limits: Limits) -> list[list[str]]:
        given = [f for f in ("sentences", "texts") if getattr(body, f) is not None]
        if len(given) != 1:
            raise RequestError(f"give one of `sentences` and `texts`; got {given or 'neither'}")
        sentences = body.sentences if given == ["sentences"] else [t.split() for t in body.texts]
        check_count(given[0], len(sentences), limits)
        for i, words in enumerate(sentences):
            check_steps(f"{given[0]}[{i}]", len(words), limits)
        return sentences

    def answer(self, endpoint: str, jobs: list[list[list[str]]]) -> list[dict]:
        every = self.tagger.tag([s for job in jobs for s in job])
        return [{"tags": part} for part in split_back(every, [len(j) for j in jobs])]


__all__ = ["TagModel"]
