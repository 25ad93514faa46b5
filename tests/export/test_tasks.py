"""ONNX graphs of every task model equal PyTorch in onnxruntime: lengths, batch and length
dynamic, state carried by the caller, greedy decoding driven by the runtime."""

from __future__ import annotations

import pytest
import torch

from elman.data.tokenize import EOS_ID
from elman.decode import greedy_search
from elman.graphs import onnx as ox
from elman.graphs.graph import check_graph, export_checked, write_graph
from elman.nn.seq2seq import Seq2Seq
from elman.tasks.classify.graphs import classifier_graphs
from elman.tasks.classify.model import SequenceClassifier
from elman.tasks.forecast.graphs import forecaster_graphs
from elman.tasks.forecast.model import Forecaster
from elman.tasks.lm.graphs import language_graphs
from elman.tasks.seq2seq import graphs as s2s
from elman.tasks.tag.graphs import tagger_graphs
from elman.tasks.tag.model import TagBatch, Tagger

pytest.importorskip("onnxruntime")
GRAPHS = {  # each task's graphs, by its model class
    SequenceClassifier: classifier_graphs,
    Tagger: tagger_graphs,
    Seq2Seq: s2s.seq2seq_graphs,
    Forecaster: forecaster_graphs,
}


def _exported(tmp_path, model) -> tuple[list, dict]:
    found = GRAPHS[type(model)](model.eval())
    paths = {g.name: tmp_path / f"{g.name}.onnx" for g in found}
    diffs = export_checked(found, paths)  # batch 3, length 7 where the export saw 2, 5
    assert max(diffs.values()) < 1e-5
    return found, paths


CLASSIFIERS = {
    "lstm bidirectional last": dict(cell="lstm", pooling="last"),
    "gru mean": dict(cell="gru", bidirectional=False, pooling="mean"),
    "rnn 2 layers max": dict(cell="rnn", layers=2, pooling="max"),
    "layer-norm lstm attention": dict(cell="ln-lstm", pooling="attention"),
    "layer-norm gru 2 layers last": dict(cell="ln-gru", layers=2, pooling="last"),
}


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifier_graphs_read_the_lengths_of_padded_batches(tmp_path, name):
    torch.manual_seed(0)
    kw = {"hidden": 5, "bidirectional": True} | CLASSIFIERS[name]
    model = SequenceClassifier(3, vocab_size=11, embedding=4, **kw).eval()
    (graph,), paths = _exported(tmp_path, model)
    x = torch.randint(1, 11, (4, 9))
    for lengths in ([9, 2, 5, 1], [3, 3, 2, 1], [9, 9, 9, 9]):  # mixed, all short, all full
        n = torch.tensor(lengths)
        x = x * (torch.arange(9)[None] < n[:, None])
        assert check_graph(graph, paths[graph.name], (x, n)) < 1e-5
        # the padding is really ignored: the same rows cut to their own lengths
        alone = ox.run(paths[graph.name], {"x": x[1:2, : lengths[1]], "lengths": n[1:2]})[0]
        whole = ox.run(paths[graph.name], {"x": x, "lengths": n})[0]
        torch.testing.assert_close(alone[0], whole[1], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("cell", ["gru", "ln-lstm"])
def test_series_classifier_with_its_convolutional_branch(tmp_path, cell):
    torch.manual_seed(1)
    model = SequenceClassifier(3, cell, 5, channels=2, conv=True, pooling="mean")
    (graph,), paths = _exported(tmp_path, model)
    x, n = torch.randn(3, 6, 2), torch.tensor([6, 4, 2])
    x[0, 1, 0] = float("nan")  # missing values: the training mean
    assert check_graph(graph, paths[graph.name], (x, n)) < 1e-5


@pytest.mark.parametrize("cell,crf", [("lstm", True), ("ln-lstm", False), ("gru", True)])
def test_tagger_graph_gives_emissions_and_the_crf_scores(tmp_path, cell, crf):
    torch.manual_seed(2)
    model = Tagger(13, 9, 4, cell, 5, 3, 4, 6, 2, crf=crf)
    (graph,), paths = _exported(tmp_path, model)
    words, chars, n = graph.draw(3, 6, torch.Generator().manual_seed(0))
    got = ox.run(paths[graph.name], {"words": words, "chars": chars, "lengths": n})
    assert graph.outputs == (
        ("emissions", "transitions", "start", "end") if crf else ("emissions",)
    )
    if crf:  # a runtime can Viterbi with these: the model's own decode
        e, a, start, end = got
        crf = model.crf
        for value, weight in ((a, crf.transitions), (start, crf.start), (end, crf.end)):
            torch.testing.assert_close(value, weight.detach())
        mask = torch.arange(6)[None] < n[:, None]
        assert model.crf.decode(e, mask) == model.eval().decode(TagBatch(words, chars, n, None, n))


SEQ2SEQ = {
    "lstm general": dict(cell="lstm", attention="general"),
    "gru additive input feeding": dict(cell="gru", attention="additive", input_feeding=True),
    "layer-norm lstm dot unidirectional": dict(
        cell="ln-lstm", attention="dot", bidirectional=False, input_feeding=True
    ),
    "rnn without attention": dict(cell="rnn", attention="none", layers=1),
}


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_seq2seq_graphs_decode_greedily_like_pytorch(tmp_path, name):
    torch.manual_seed(3)
    kw = {"embedding": 4, "hidden": 3, "layers": 2} | SEQ2SEQ[name]
    model = Seq2Seq(11, 12, **kw).eval()
    found, paths = _exported(tmp_path, model)
    assert [g.name for g in found] == ["encoder", "decoder-step"]
    source = torch.randint(1, 11, (4, 6))
    n = torch.tensor([6, 2, 4, 1])
    source = source * (torch.arange(6)[None] < n[:, None])
    with torch.no_grad():
        state = model.encode(source, n)
        want = greedy_search(model.step, state, 4, EOS_ID, EOS_ID, 8)
    assert check_graph(found[0], paths["encoder"], (source, n)) < 1e-5
    tokens = torch.full((4,), EOS_ID)
    assert (
        check_graph(found[1], paths["decoder-step"], s2s.step_inputs(model, tokens, state)) < 1e-5
    )
    got = s2s.greedy(paths["encoder"], paths["decoder-step"], source, n, EOS_ID, EOS_ID, 8)
    assert [h.tokens for h in got] == [h.tokens for h in want]


def test_autoregressive_forecaster_streams_one_step_at_a_time(tmp_path):
    torch.manual_seed(4)
    model = Forecaster("autoregressive", 4, 0, 2, 5, 3, "ln-lstm", 6, 2).eval()
    (graph,), paths = _exported(tmp_path, model)
    assert graph.inputs == ("lagged", "future", "ids", "h0", "c0")
    lagged, future, ids, h, c = graph.draw(2, 5, torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, _ = model.step_parameters(lagged, future, ids, (h, c))
    session, steps = ox.session(paths[graph.name]), []
    for t in range(5):  # T = 1 per call, the state carried here
        theta, h, c = ox.run(
            session,
            dict(
                zip(
                    graph.inputs,
                    (lagged[:, t : t + 1], future[:, t : t + 1], ids, h, c),
                    strict=True,
                )
            ),
        )
        steps.append(theta)
    torch.testing.assert_close(torch.cat(steps, dim=1), want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "past,future,ids,cell", [(2, 3, 3, "lstm"), (0, 0, 0, "gru"), (1, 0, 0, "ln-gru")]
)
def test_direct_forecaster_graph(tmp_path, past, future, ids, cell):
    torch.manual_seed(5)
    model = Forecaster("direct", 4, past, future, 5, ids, cell, 6, 2, head="quantile")
    (graph,), _ = _exported(tmp_path, model)
    assert graph.inputs[0] == "z" and ("past" in graph.inputs) == bool(past)


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        language_graphs(torch.nn.Linear(2, 2), 4, False, "chunk")


def test_graphs_write_atomically(tmp_path):
    model = SequenceClassifier(2, "gru", 3, vocab_size=5, embedding=2)
    (graph,) = classifier_graphs(model.eval())
    with pytest.raises(Exception):  # noqa: B017  a bad example: the file never appears
        write_graph(graph, tmp_path / "m.onnx", (torch.zeros(2, 3),))
    assert not (tmp_path / "m.onnx").exists()
