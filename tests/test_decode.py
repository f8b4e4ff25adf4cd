"""crnn.decode: greedy against the per-frame loop, beam search against exhaustive summation,
constraints against brute force, input checks, CPU against CUDA."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crnn.bench.decode_speed import peaked_log_probs
from crnn.decode import (
    Decoded,
    _beam,
    _compiled,
    beam,
    beam_decode,
    greedy,
    greedy_decode,
    reference,
)

SYMBOLS = "abcdefghijklmnopqrstuvwxyz0123456789"
NEEDS_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
EXACT = {"cutoff": 0.0, "top_k": None}  # beam search without pruning
# The search fixture only switches a module attribute: safe to share across examples.
FIXTURE_OK = [HealthCheck.function_scoped_fixture]


def random_log_probs(t: int, n: int, c: int, seed: int, scale: float = 2.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(t, n, c, generator=g)).log_softmax(-1)


def collapse_text(path: tuple[int, ...], charset: str) -> str:
    chars, previous = [], 0
    for cls in path:
        if cls != 0 and cls != previous:
            chars.append(charset[cls - 1])
        previous = cls
    return "".join(chars)


def path_scores(lp: torch.Tensor, row: int, classes: list[int]) -> dict[tuple[int, ...], float]:
    """Log-probability of every path of one row that uses only ``classes``."""
    frames = lp[:, row].double().numpy()
    paths = list(itertools.product(classes, repeat=frames.shape[0]))
    scores = frames[np.arange(frames.shape[0]), np.array(paths)].sum(1)
    return dict(zip(paths, scores.tolist()))


def text_scores(lp: torch.Tensor, row: int, charset: str, classes: list[int]) -> dict[str, float]:
    """Exact log-probability of every text of one row: a sum over all its paths."""
    per_text: dict[str, list[float]] = {}
    for path, score in path_scores(lp, row, classes).items():
        per_text.setdefault(collapse_text(path, charset), []).append(score)
    return {text: float(np.logaddexp.reduce(s)) for text, s in per_text.items()}


def bounded_rows(lp: torch.Tensor, need_score: bool = True) -> tuple[list[bool], list[float]]:
    """The compiled bound of every row: decided?, bound."""
    host = lp.float().contiguous().numpy()
    t, _, c = lp.shape
    path, labels, near = np.zeros(t, np.int64), np.zeros(t, np.int64), np.zeros(c, np.int64)
    alpha = np.zeros(2 * t + 1)
    shares, bounds, _ = zip(*(_compiled.bound_row(host, r, t, path, labels, near, alpha,
                                                  need_score) for r in range(lp.shape[1])))
    return [s > math.log(0.5) + 1e-4 for s in shares], list(bounds)


@pytest.fixture(params=["compiled", "tensor"])
def search(request, monkeypatch):
    """Run a test with the compiled search (the CPU's) and with the tensor one (CUDA's)."""
    if request.param == "tensor":
        monkeypatch.setattr(_beam, "_on_host", lambda lp: False)
        monkeypatch.setattr(_beam, "plain_host_array", lambda lp, charset: None)
    return request.param


def prefix_count(symbols: int, frames: int) -> int:
    return sum(symbols**length for length in range(frames + 1))


# --- greedy against the per-frame loop ----------------------------------------------------


@st.composite
def logits_cases(draw):
    t = draw(st.integers(1, 12))
    n = draw(st.integers(1, 6))
    c = draw(st.integers(1, 6))
    # Small integers make ties, repeats, all-blank rows and empty outputs common.
    values = draw(st.lists(st.integers(-3, 3), min_size=t * n * c, max_size=t * n * c))
    logits = torch.tensor(values, dtype=torch.float32).view(t, n, c)
    if draw(st.booleans()):
        noise = draw(st.integers(0, 2**31 - 1))
        logits = logits + torch.randn(t, n, c, generator=torch.Generator().manual_seed(noise))
    lengths = draw(st.lists(st.integers(0, t), min_size=n, max_size=n))
    # Raw logits too: they take the plain-max path of greedy, log-probabilities the other.
    return logits if draw(st.booleans()) else logits.log_softmax(-1), SYMBOLS[: c - 1], lengths


@settings(max_examples=150, deadline=None)
@given(logits_cases())
def test_greedy_equals_the_reference_loop(case):
    lp, charset, lengths = case
    assert greedy(lp, charset) == reference(lp, charset)
    truncated = [
        reference(lp[:length, row : row + 1], charset)[0] for row, length in enumerate(lengths)
    ]
    assert greedy(lp, charset, lengths=torch.tensor(lengths)) == truncated


def test_greedy_edge_cases():
    blank, a, b = [0.0, -9.0, -9.0], [-9.0, 0.0, -9.0], [-9.0, -9.0, 0.0]
    frames = [[blank, blank], [a, blank], [a, blank], [blank, blank], [a, blank], [b, blank]]
    lp = torch.tensor(frames)  # (T=6, N=2, C=3): "a a _ a b" and all blank
    assert greedy(lp, "ab") == ["aab", ""] == reference(lp, "ab")
    assert greedy(lp[:1, :1], "ab") == [""]
    assert greedy(lp[:, :0], "ab") == []
    assert greedy(torch.zeros(0, 3, 3), "ab") == ["", "", ""]


def test_compiled_best_class_is_the_first_largest_and_never_nan():
    # Up to 11 classes: the four-chain max and its tail; ties, infinities and NaN anywhere.
    g = torch.Generator().manual_seed(0)
    values = torch.tensor([0.0, -1.0, 2.0, float("inf"), float("-inf"), float("nan")])
    for c in range(1, 12):
        lp = values[torch.randint(0, 6, (200, 1, c), generator=g)].numpy()
        for t in range(200):
            row = lp[t, 0]
            expected = 0  # a strict running max from class 0, as argmax without NaN
            for q in range(1, c):
                if row[q] > row[expected]:
                    expected = q
            assert _compiled._best_class(lp, t, 0, c) == expected, row


def test_greedy_on_peaked_batches_and_wide_charsets():
    lp = peaked_log_probs(300, t=30, c=37, seed=1)
    assert greedy(lp, SYMBOLS) == reference(lp, SYMBOLS)
    wide = "αβγδεζηθικλμνξοπρστυφχψωабвгдежзийкл"  # not Latin-1: the other string path
    assert greedy(lp, wide) == reference(lp, wide)
    assert greedy(lp.numpy(), SYMBOLS) == reference(lp, SYMBOLS)


def test_greedy_scores_and_details():
    lp = random_log_probs(9, 5, 4, seed=3)
    decoded = greedy_decode(lp, "abc", details=True)
    assert isinstance(decoded, Decoded)
    best = lp.max(-1)
    torch.testing.assert_close(decoded.log_prob, best.values.sum(0))
    torch.testing.assert_close(decoded.confidence, best.values.sum(0).exp())
    for row, text in enumerate(decoded.texts):
        path = best.indices[:, row].tolist()
        starts = [t for t in range(9) if path[t] != 0 and (t == 0 or path[t] != path[t - 1])]
        assert decoded.positions[row].tolist() == starts
        assert "".join("abc"[path[t] - 1] for t in starts) == text
        expected = [math.exp(lp[t, row, path[t]]) for t in starts]
        assert decoded.char_probs[row].tolist() == pytest.approx(expected, rel=1e-5)


# --- beam search against exhaustive summation ---------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=FIXTURE_OK)
@given(t=st.integers(1, 6), c=st.integers(2, 4), seed=st.integers(0, 10_000))
def test_unpruned_beam_is_exact_on_small_cases(t, c, seed, search):
    lp = random_log_probs(t, 2, c, seed)
    charset = SYMBOLS[: c - 1]
    decoded = beam_decode(lp, charset, width=prefix_count(c - 1, t), nbest=3, **EXACT)
    for row in range(2):
        exact = text_scores(lp, row, charset, list(range(c)))
        best = max(exact, key=exact.get)
        assert decoded.texts[row] == best
        assert decoded.log_prob[row].item() == pytest.approx(exact[best], abs=1e-4)
        texts = [text for text, _ in decoded.nbest[row]]
        assert len(texts) == len(set(texts))  # alignments of one text were merged
        for text, score in decoded.nbest[row]:
            assert score == pytest.approx(exact[text], abs=1e-4)


def test_unpruned_beam_is_exact_at_seven_frames_and_three_symbols(search):
    lp = random_log_probs(7, 2, 4, seed=11, scale=1.0)
    decoded = beam_decode(lp, "abc", width=prefix_count(3, 7), **EXACT)
    for row in range(2):
        exact = text_scores(lp, row, "abc", [0, 1, 2, 3])
        best = max(exact, key=exact.get)
        assert decoded.texts[row] == best
        assert decoded.log_prob[row].item() == pytest.approx(exact[best], abs=1e-4)


def test_rows_whose_best_text_holds_most_of_the_mass_skip_the_search():
    lp = peaked_log_probs(256, peak=12.0, noise=1.0, seed=7)
    greedy_texts = greedy(lp, SYMBOLS)
    # A text above half the probability is the exact answer, found without a search.
    text_lp = -torch.nn.functional.ctc_loss(
        lp,
        torch.tensor([SYMBOLS.index(ch) + 1 for text in greedy_texts for ch in text]),
        torch.full((256,), lp.shape[0]),
        torch.tensor([len(text) for text in greedy_texts]),
        reduction="none",
    )
    decided = text_lp > math.log(0.5)
    path_decided = lp.max(-1).values.sum(0) > math.log(0.5)
    assert decided.float().mean() > path_decided.float().mean()  # alignments add up
    decoded = beam_decode(lp, SYMBOLS)
    assert all(decoded.texts[r] == greedy_texts[r] for r in decided.nonzero()[:, 0].tolist())
    torch.testing.assert_close(decoded.log_prob[decided], text_lp[decided])
    wide = beam_decode(lp, SYMBOLS, width=32, nbest=2, **EXACT)  # nbest > 1: all searched
    assert decoded.texts == [pairs[0][0] for pairs in wide.nbest]


@settings(max_examples=40, deadline=None)
@given(t=st.integers(1, 6), c=st.integers(2, 4), seed=st.integers(0, 10_000),
       peak=st.sampled_from([0.0, 4.0, 8.0]))
def test_compiled_bound_is_a_lower_bound_and_decides_only_exact_rows(t, c, seed, peak):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(t, 3, c, generator=g)
    # Peaks on random classes make blanks, repeats and runs of every kind.
    logits.scatter_add_(2, torch.randint(0, c, (t, 3, 1), generator=g), torch.full((t, 3, 1), peak))
    lp = logits.log_softmax(-1)
    charset = SYMBOLS[: c - 1]
    sure, bound = bounded_rows(lp)
    sure_path, path_bound = bounded_rows(lp, need_score=False)
    texts = greedy(lp, charset)
    for row in range(3):
        best_path = float(lp[:, row].max(-1).values.sum())
        # Without a score wanted, the best path alone may decide a row: only if the sum does.
        assert sure[row] or not sure_path[row]
        assert path_bound[row] in (bound[row], pytest.approx(best_path, abs=1e-5))
        exact = text_scores(lp, row, charset, list(range(c)))
        assert best_path - 1e-4 <= bound[row] <= exact[texts[row]] + 1e-4
        if sure[row]:
            assert texts[row] == max(exact, key=exact.get)
            assert exact[texts[row]] > math.log(0.5)
        best = lp[:, row].max(-1, keepdim=True).values
        if bool((lp[:, row] >= best - 12).all()):  # no class cut: the text's exact sum
            assert bound[row] == pytest.approx(exact[texts[row]], abs=1e-4)
            assert sure[row] == (exact[texts[row]] > math.log(0.5) + 1e-3) or (
                abs(exact[texts[row]] - math.log(0.5)) <= 1e-3)
    assert beam(lp, charset, width=prefix_count(c - 1, t), **EXACT) == [
        max(e, key=e.get) for e in (text_scores(lp, r, charset, list(range(c))) for r in range(3))
    ]


def test_compiled_bound_sums_the_alignments_of_the_text():
    # Frames: a, blank, a, a, blank, b: the text "aab" needs the blank between its two a's;
    # the uncertain frames give it many alignments, which the bound sums as ctc_loss does.
    p = torch.full((6, 1, 3), 1e-3)
    for frame, cls in enumerate([1, 0, 1, 1, 0, 2]):
        p[frame, 0, cls] = 0.7
    p[1, 0, 1] = p[2, 0, 0] = p[3, 0, 2] = p[4, 0, 2] = 0.2
    lp = (p / p.sum(-1, keepdim=True)).log()
    sure, bound = bounded_rows(lp)
    exact = text_scores(lp, 0, "ab", [0, 1, 2])
    assert greedy(lp, "ab") == ["aab"]
    assert bound[0] == pytest.approx(exact["aab"], abs=1e-6)
    assert sure[0] == (exact["aab"] > math.log(0.5))
    # A class more than 12 nats below its frame's best counts as 0: a little less, no more.
    p[3, 0, 2] = p[3, 0, 1] * math.exp(-12.5)
    lp = (p / p.sum(-1, keepdim=True)).log()
    _, cut = bounded_rows(lp)
    exact = text_scores(lp, 0, "ab", [0, 1, 2])["aab"]
    assert exact - 1e-5 <= cut[0] <= exact
    assert cut[0] < exact - 1e-7


def test_rows_after_decided_or_longer_rows_decode_as_alone():
    # The compiled decoders reuse their scratch (path, text, forward variables) across rows.
    lp = peaked_log_probs(64, seed=3, peak=12.0, noise=0.3)  # mostly decided rows
    lp[:, 1::3] = random_log_probs(40, 21, 37, seed=4, scale=3.0)  # rows that need a search
    decided, _ = bounded_rows(lp)
    assert 0 < sum(decided) < 64
    lengths = torch.randint(0, 41, (64,), generator=torch.Generator().manual_seed(5))
    assert beam(lp, SYMBOLS) == [beam(lp[:, r : r + 1], SYMBOLS)[0] for r in range(64)]
    assert beam(lp, SYMBOLS, lengths=lengths) == [
        beam(lp[:, r : r + 1], SYMBOLS, lengths=lengths[r : r + 1])[0] for r in range(64)
    ]
    pruning = _beam.Pruning(10, 1e-3, 2, 1)
    texts, top = _beam._host_search(lp, lengths, None, SYMBOLS, pruning, bound=True)
    for r in range(64):
        alone = _beam._host_search(lp[:, r : r + 1], lengths[r : r + 1], None, SYMBOLS,
                                   pruning, bound=True)
        assert (texts[r], top[r].item()) == (alone[0][0], alone[1][0].item())


def test_greedy_compiled_and_tensor_paths_agree():
    lp = peaked_log_probs(131, seed=5)
    compiled = greedy(lp, SYMBOLS)  # the compiled path: plain CPU float32
    tensor = greedy_decode(lp, SYMBOLS).texts  # the tensor path: scores asked for
    assert compiled == tensor == reference(lp, SYMBOLS)
    assert greedy(lp.double(), SYMBOLS) == compiled
    assert greedy(lp[:, :1], SYMBOLS) == compiled[:1]
    assert greedy(lp[:, ::2], SYMBOLS) == compiled[::2]  # not contiguous
    wide = "".join(chr(0x4E00 + i) for i in range(36))  # no byte table: the wide path
    assert greedy(lp, wide) == reference(lp, wide)


def test_compiled_and_tensor_searches_agree(monkeypatch):
    lp = peaked_log_probs(300, seed=9)
    compiled = beam_decode(lp, SYMBOLS, nbest=2)
    monkeypatch.setattr(_beam, "_on_host", lambda lp: False)
    tensor = beam_decode(lp, SYMBOLS, nbest=2)
    # The same search: the same texts, scores apart only by float32 vs float64 sums.
    assert compiled.texts == tensor.texts
    for mine, theirs in zip(compiled.nbest, tensor.nbest):
        assert [text for text, _ in mine] == [text for text, _ in theirs]
        assert [p for _, p in mine] == pytest.approx([p for _, p in theirs], abs=1e-4)
    torch.testing.assert_close(compiled.log_prob, tensor.log_prob, atol=1e-4, rtol=0)
    assert beam(lp, SYMBOLS) == tensor.texts  # texts only: rows decided by the bound


def test_pruned_beam_on_peaked_logits(search):
    lp = peaked_log_probs(200, seed=2)
    exact = beam_decode(lp, SYMBOLS, width=32, **EXACT)
    pruned = beam_decode(lp, SYMBOLS)  # the defaults: width 10, cutoff and top_k pruning
    assert np.mean([a == b for a, b in zip(pruned.texts, exact.texts)]) >= 0.98
    # A beam keeps some of a text's alignments: its score is at most the text's probability,
    # which CTC's forward algorithm computes exactly.
    targets = [torch.tensor([SYMBOLS.index(ch) + 1 for ch in text]) for text in pruned.texts]
    true = -torch.nn.functional.ctc_loss(
        lp,
        torch.cat(targets),
        torch.full((200,), 40),
        torch.tensor([len(t) for t in targets]),
        reduction="none",
        zero_infinity=False,
    )
    assert bool((pruned.log_prob <= true + 1e-4).all())
    assert bool((pruned.log_prob >= true - 0.5).all())
    assert beam(lp, SYMBOLS) == pruned.texts


def test_decoders_take_numpy_and_leave_the_input_alone():
    for t, n in ((1, 1), (6, 3)):
        lp = random_log_probs(t, n, 5, seed=t)
        before = lp.clone()
        assert beam(lp.numpy(), "abcd") == beam(lp, "abcd")
        greedy_decode(lp, "abcd", length_range=(0, 1), details=True)
        beam_decode(lp, "abcd", allowed="ab", nbest=2)
        assert torch.equal(lp, before)


def test_certain_blanks_decode_to_empty_texts(search):
    lp = torch.full((5, 2, 3), float("-inf"))
    lp[..., 0] = 0.0
    assert greedy(lp, "ab") == beam(lp, "ab") == ["", ""]
    assert beam_decode(lp, "ab").log_prob.tolist() == [0.0, 0.0]


def test_beam_width_one_and_lengths(search):
    lp = random_log_probs(8, 4, 5, seed=5)
    assert len(beam(lp, "abcd", width=1)) == 4
    lengths = torch.tensor([8, 5, 1, 0])
    texts = beam(lp, "abcd", width=6, lengths=lengths, **EXACT)
    for row, length in enumerate(lengths.tolist()):
        alone = beam(lp[:length, row : row + 1], "abcd", width=6, **EXACT)
        assert texts[row] == alone[0]


# --- constraints --------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    t=st.integers(3, 6),
    c=st.integers(3, 4),
    seed=st.integers(0, 10_000),
    lo=st.integers(0, 3),
    extra=st.integers(0, 2),
)
def test_constrained_greedy_is_the_best_path_within_the_range(t, c, seed, lo, extra):
    lp = random_log_probs(t, 2, c, seed)
    charset = SYMBOLS[: c - 1]
    hi = lo + extra
    decoded = greedy_decode(lp, charset, length_range=(lo, hi))
    for row in range(2):
        fitting = {
            path: score
            for path, score in path_scores(lp, row, list(range(c))).items()
            if lo <= len(collapse_text(path, charset)) <= hi
        }
        best = max(fitting, key=fitting.get)
        assert lo <= len(decoded.texts[row]) <= hi
        assert decoded.log_prob[row].item() == pytest.approx(fitting[best], abs=1e-4)
        best_for_text = max(
            s for p, s in fitting.items() if collapse_text(p, charset) == decoded.texts[row]
        )
        assert best_for_text == pytest.approx(fitting[best], abs=1e-4)


@settings(max_examples=25, deadline=None, suppress_health_check=FIXTURE_OK)
@given(
    t=st.integers(2, 6), seed=st.integers(0, 10_000), lo=st.integers(0, 2), extra=st.integers(0, 2)
)
def test_constrained_beam_is_exact_within_the_constraints(t, seed, lo, extra, search):
    lp = random_log_probs(t, 2, 4, seed)
    hi = lo + extra
    decoded = beam_decode(
        lp, "abc", width=prefix_count(2, t), allowed="ac", length_range=(lo, hi), **EXACT
    )
    for row in range(2):
        exact = text_scores(lp, row, "abc", [0, 1, 3])  # "b" (class 2) never allowed
        fitting = {text: s for text, s in exact.items() if lo <= len(text) <= hi}
        best = max(fitting, key=fitting.get)
        assert decoded.texts[row] == best
        assert decoded.log_prob[row].item() == pytest.approx(fitting[best], abs=1e-4)


def test_constraints_are_never_violated_on_peaked_logits(search):
    lp = peaked_log_probs(256, seed=4)
    allowed = "abcdefgh0123"
    for decode in (greedy, beam):
        texts = decode(lp, SYMBOLS, allowed=allowed, length_range=(4, 6))
        assert all(4 <= len(text) <= 6 and set(text) <= set(allowed) for text in texts)
        assert all(len(text) == 5 for text in decode(lp, SYMBOLS, length_range=5))
        assert all(set(text) <= set("xyz") for text in decode(lp, SYMBOLS, allowed="xyz"))


def test_allowed_alone_keeps_greedy_a_best_path():
    lp = random_log_probs(10, 6, 5, seed=8)
    masked = lp.clone()
    masked[..., [2, 4]] = float("-inf")  # "b" and "d"
    assert greedy(lp, "abcd", allowed="ac") == reference(masked, "abcd")


def test_constrained_rows_that_cannot_fit_raise():
    lp = random_log_probs(3, 2, 4, seed=0)
    with pytest.raises(ValueError, match="cannot emit"):
        greedy(lp, "abc", length_range=(4, 6))
    # "aa" needs a blank between the two: three frames are enough, two are not.
    assert greedy(lp, "abc", length_range=2, allowed="a") == ["aa", "aa"]
    assert beam(lp, "abc", length_range=2, allowed="a") == ["aa", "aa"]
    with pytest.raises(ValueError, match="cannot emit"):
        beam(lp[:2], "abc", length_range=2, allowed="a")


# --- input checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"log_probs": torch.zeros(4, 3)}, "must be \\(T, N, C\\)"),
        ({"charset": "ab"}, "charset has 2 symbols"),
        ({"log_probs": torch.zeros(4, 2, 4, dtype=torch.long)}, "floating point"),
        ({"lengths": torch.tensor([1, 2, 3])}, "lengths must have shape"),
        ({"lengths": torch.tensor([5, 1])}, "lengths must lie in"),
        ({"allowed": "az"}, "not in charset"),
        ({"length_range": (3, 1)}, "0 <= lo <= hi"),
        ({"charset": "a\0c"}, "NUL"),
    ],
)
def test_bad_inputs_raise_clear_errors(kwargs, message):
    args = {"log_probs": torch.zeros(4, 2, 4), "charset": "abc", **kwargs}
    for decode in (greedy, beam):
        with pytest.raises(ValueError, match=message):
            decode(**args)


@pytest.mark.parametrize("kwargs", [{"width": 0}, {"nbest": 0}, {"cutoff": 1.0}, {"top_k": 0}])
def test_bad_beam_settings_raise(kwargs):
    with pytest.raises(ValueError):
        beam_decode(torch.zeros(4, 2, 4), "abc", **kwargs)


# --- CPU against CUDA -------------------------------------------------------------------------


@pytest.mark.cuda
@NEEDS_CUDA
def test_cuda_greedy_and_beam_agree_with_cpu():
    """The same texts on both devices, up to exact ties: ``peaked_log_probs`` gives every
    off-peak symbol one probability, so with ``allowed`` two texts can score exactly alike
    (seen on an H200: '32a1b1' and '3ca1b1', both -38.1683), and the compiled CPU search and
    the tensor GPU search may keep either. A tied text scores the same, so scores must agree
    for every row, and differing texts stay rare."""
    lp = peaked_log_probs(512, seed=6)
    gpu = lp.cuda()
    assert greedy(gpu, SYMBOLS) == greedy(lp, SYMBOLS)
    cpu_beam, gpu_beam = beam_decode(lp, SYMBOLS), beam_decode(gpu, SYMBOLS)
    assert gpu_beam.texts == cpu_beam.texts
    torch.testing.assert_close(gpu_beam.log_prob.cpu(), cpu_beam.log_prob, atol=1e-4, rtol=0)
    lengths = torch.randint(20, 41, (512,), generator=torch.Generator().manual_seed(0))
    for kwargs in ({"length_range": (4, 6)}, {"allowed": "abc123"}, {"lengths": lengths}):
        gpu_kwargs = {k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
        assert greedy(gpu, SYMBOLS, **gpu_kwargs) == greedy(lp, SYMBOLS, **kwargs)
        on_cpu, on_gpu = beam_decode(lp, SYMBOLS, **kwargs), beam_decode(gpu, SYMBOLS, **gpu_kwargs)
        torch.testing.assert_close(on_gpu.log_prob.cpu(), on_cpu.log_prob, atol=1e-4, rtol=0)
        differ = [(a, b) for a, b in zip(on_cpu.texts, on_gpu.texts) if a != b]
        assert len(differ) <= lp.shape[1] // 50, (kwargs, differ)  # ties only
        assert beam(gpu, SYMBOLS, **gpu_kwargs) == on_gpu.texts


# --- the benchmark's logits ----------------------------------------------------------------------


def test_peaked_log_probs_are_deterministic_log_probabilities():
    lp = peaked_log_probs(64, t=40, c=37, seed=3)
    assert lp.shape == (40, 64, 37)
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(40, 64))
    assert torch.equal(lp, peaked_log_probs(64, t=40, c=37, seed=3))
    assert not torch.equal(lp, peaked_log_probs(64, t=40, c=37, seed=4))
    lengths = [len(text) for text in greedy(lp, SYMBOLS)]
    assert 3 <= np.mean(lengths) <= 7
