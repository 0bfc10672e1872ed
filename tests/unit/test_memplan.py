"""The memory plan, pure: splits by tokens, the fitted line, the choice of checkpointing, corrections."""

from __future__ import annotations

from farensed.core.formats import Downshift, MemoryMode, MemoryModel, ProbePoint
from farensed.core.units import GIB
from farensed.memory import plan as memplan

MB = 1024**2


def _model(per_token=1.0 * MB, base=100 * MB, usable=1124 * MB, cap=4, floor=1, gc=False, modes=None) -> MemoryModel:
    """1 MB a token over a 100 MB base, ~1 GB planned: 1024 tokens fit (4 x 256, 2 x 512, 8 x 128)."""
    modes = modes or [MemoryMode(grad_checkpoint=gc, base_bytes=base, per_token_bytes=per_token)]
    return MemoryModel(key="k", rows_cap=cap, rows_floor=floor, max_seq_length=512, budget_bytes=int(usable / 0.95),
                       usable_bytes=int(usable), grad_checkpoint=gc, modes=modes)


def _plain(cap=4) -> MemoryModel:
    return MemoryModel(key="k", rows_cap=cap, rows_floor=1, max_seq_length=512,
                       modes=[MemoryMode(grad_checkpoint=False)])


def test_without_a_budget_a_step_is_split_into_batch_size_micro_batches_as_before():
    # Given no budget, When steps of 8 and of 5 examples are split, Then as batch_size slices
    assert memplan.split(_plain(), [100] * 8) == [4, 4]
    assert memplan.split(_plain(), [500] * 5) == [4, 1]


def test_short_steps_run_wide_and_long_steps_narrow_and_mixed_ones_both():
    m = _model()
    # Given 1024 tokens a micro-batch fit: short examples (width 128) fill 4 rows, long (512) only 2
    assert memplan.split(m, [120] * 8) == [4, 4]
    assert memplan.split(m, [500] * 8) == [2, 2, 2, 2]
    # When one step holds short examples and one long one (sorted, as the epoch plan makes them)
    sizes = memplan.split(m, [200] * 7 + [510])
    # Then the short ones go 4 wide (4 x 224 tokens), then 3, and the long one alone (1 x 512)
    assert sizes == [4, 3, 1]
    for rows, width in memplan.shapes([200] * 7 + [510], sizes, 512):
        assert memplan.predict(m.modes[0], rows * width) <= m.usable_bytes


def test_the_split_is_a_pure_function_of_lengths_and_model():
    m = _model()
    lengths = [130, 140, 150, 260, 270, 280, 400, 500]
    assert memplan.split(m, lengths) == memplan.split(m.model_copy(), list(lengths))


def test_a_step_that_does_not_fit_at_the_floor_has_no_split():
    # Given a floor of 2 rows and room for one 512-token example only
    m = _model(usable=700 * MB, floor=2)
    # Then a long step cannot be split, a short one can
    assert memplan.split(m, [500] * 8) is None
    assert memplan.split(m, [100] * 8) == [4, 4]


def test_the_fitted_line_lies_above_every_measured_peak():
    # Given three measured micro-batches (not on one line)
    pts = [ProbePoint(rows=1, width=512, peak_bytes=700 * MB), ProbePoint(rows=2, width=512, peak_bytes=1250 * MB),
           ProbePoint(rows=4, width=128, peak_bytes=560 * MB)]
    # When the line is fitted
    base, per_token = memplan.fit_line(pts, floor_bytes=90 * MB)
    # Then no measured peak is above it, and it touches the highest one
    preds = [base + per_token * p.rows * p.width for p in pts]
    assert all(pr >= p.peak_bytes - 1 for pr, p in zip(preds, pts))
    assert min(pr - p.peak_bytes for pr, p in zip(preds, pts)) < 1
    # And one point alone gives the line from the floor through it
    assert memplan.fit_line(pts[:1], 188 * MB) == (188 * MB, MB)


def test_the_time_fit_separates_per_micro_batch_and_per_token_cost():
    pts = [ProbePoint(rows=1, width=100, peak_bytes=1, seconds=0.3),
           ProbePoint(rows=4, width=100, peak_bytes=1, seconds=0.6)]
    t0, per_token = memplan.fit_time(pts)
    assert abs(t0 - 0.2) < 1e-9 and abs(per_token - 0.001) < 1e-12


def _two_modes(gc_per_token_seconds: float) -> MemoryModel:
    """A micro-batch costs 1 s plus 1 ms a token without checkpointing (a device idle on small ones)."""
    off = MemoryMode(grad_checkpoint=False, base_bytes=100 * MB, per_token_bytes=1.0 * MB, seconds_base=1.0,
                     seconds_per_token=0.001)
    on = MemoryMode(grad_checkpoint=True, base_bytes=100 * MB, per_token_bytes=0.25 * MB, seconds_base=1.0,
                    seconds_per_token=gc_per_token_seconds)
    return _model(modes=[off, on])


def test_checkpointing_is_chosen_when_its_wider_micro_batches_make_it_faster():
    steps = [[500] * 8] * 10
    # Given checkpointing costs 10% more a token but lets 4 rows of 512 fit instead of 2
    fast = memplan.choose(_two_modes(0.0011), steps)
    # Then it is chosen (6.5 s against 8.1 s: more than PREFER_PLAIN faster), the reason gives both estimates
    assert fast.grad_checkpoint and fast.why.startswith("checkpointing on: an epoch takes an estimated")
    # And when it is faster by less than that, no checkpointing is kept (its estimate is the noisier)
    assert not memplan.choose(_two_modes(0.0014), steps).grad_checkpoint
    # And when it costs twice as much a token, no checkpointing wins
    slow = memplan.choose(_two_modes(0.002), steps)
    assert not slow.grad_checkpoint and "without it" in slow.why


def test_a_mode_in_which_a_step_cannot_run_is_never_chosen():
    # Given one example of 512 tokens over the budget without checkpointing
    m = _two_modes(0.01).model_copy(update={"usable_bytes": 400 * MB})
    chosen = memplan.choose(m, [[500] * 8])
    # Then checkpointing is on, however slow, and the reason says what does not fit
    assert chosen.grad_checkpoint and "512 tokens need" in chosen.why


def test_an_overrun_raises_the_line_above_it_and_short_steps_still_run_wide():
    m = _model()
    assert memplan.split(m, [500] * 8) == [2, 2, 2, 2]
    # When 2 x 512 tokens peaked at 1.2 GB, over the budget
    fixed = memplan.after_overrun(m, 1024, 1300 * MB)
    # Then that micro-batch is no longer planned, the line passes above the measured peak ...
    assert memplan.split(fixed, [500] * 8) == [1] * 8
    assert memplan.predict(fixed.modes[0], 1024) > 1300 * MB and fixed.corrections == 1
    # ... and a short step still runs at full width: the job is not stuck narrow
    assert memplan.split(fixed, [100] * 8) == [4, 4]


def test_an_mlx_oom_error_halves_the_largest_micro_batch_in_tokens_only():
    # Given no budget: 4 rows whatever the width
    m = _plain()
    # When MLX runs out of memory on 4 x 512 tokens
    fixed = memplan.after_oom(m, 2048, 2048)
    # Then long steps run 2 wide, short ones still 4 wide
    assert memplan.split(fixed, [500] * 8) == [2, 2, 2, 2]
    assert memplan.split(fixed, [200] * 8) == [4, 4]


def test_a_death_recorded_by_the_daemon_halves_the_plan_or_turns_checkpointing_on():
    steps = [[100] * 8, [500] * 8]
    death = Downshift(step=3, from_micro_batch=4, to_micro_batch=2, grad_checkpoint=False, reason="oom",
                      source="process_death", at=0.0)
    # When the daemon recorded one death, Then the largest micro-batch (4 x 512) is halved
    once = memplan.fold_deaths(_plain(), [death], steps)
    assert memplan.rows_at(once, 512) == 2 and memplan.rows_at(once, 128) == 4 and once.downshifts_seen == 1
    # And folding again changes nothing (the model remembers what it saw)
    assert memplan.fold_deaths(once, [death], steps) == once
    # When the daemon's ladder turned checkpointing on, Then the model does so too
    gc = death.model_copy(update={"grad_checkpoint": True})
    assert memplan.fold_deaths(once, [death, gc], steps).grad_checkpoint


def test_when_nothing_fits_the_reason_says_the_largest_length_and_the_smallest_budget():
    # Given room for 400 tokens with checkpointing
    m = _model(usable=500 * MB, gc=True)
    # Then the reason names a max_seq_length that fits and a budget that would
    text = memplan.too_small(m, 510)
    assert "512 tokens do not fit even with gradient checkpointing" in text
    assert "max_seq_length to at most 384" in text and "budget_gb to at least 0.63" in text


def test_describe_says_budget_line_choice_and_cost():
    m = _two_modes(0.0011).model_copy(update={"probe_seconds": 2.5, "why": "checkpointing on: faster"})
    text = memplan.describe(m)
    assert "budget 1.16 GB" in text and "MB/token" in text and "checkpointing on: faster" in text and "2.5 s" in text


def _cuda_like() -> MemoryMode:
    """Peaks as an H200 measured them (GiB): not a line in tokens, flat from 768 to 1024."""
    gib = 1024**3
    pts = [ProbePoint(rows=1, width=512, peak_bytes=int(10.6 * gib)),
           ProbePoint(rows=3, width=256, peak_bytes=int(13.8 * gib)),
           ProbePoint(rows=4, width=256, peak_bytes=int(13.9 * gib)),
           ProbePoint(rows=1, width=128, peak_bytes=int(4.6 * gib))]
    base, per_token = memplan.fit_line(pts, 4.0 * gib)
    return MemoryMode(grad_checkpoint=False, base_bytes=base, per_token_bytes=per_token, points=pts)


def test_between_measured_sizes_a_micro_batch_is_predicted_at_the_next_larger_one():
    m, gib = _cuda_like(), 1024**3
    # Then measured sizes are predicted at what they peaked at, sizes between at the next larger one
    assert memplan.predict(m, 512) == int(10.6 * gib) and memplan.predict(m, 600) == int(13.8 * gib)
    assert memplan.predict(m, 200) == int(10.6 * gib)
    # And the prediction never falls as tokens grow (the 1024-token point is not below the 768 one)
    preds = [memplan.predict(m, t) for t in range(64, 2049, 32)]
    assert preds == sorted(preds)
    # And above the largest measured size it grows by the fitted per-token cost
    assert memplan.predict(m, 1124) == int(13.9 * gib) + 100 * m.per_token_bytes
    # And below the smallest it is the line when the line says less than that point
    assert memplan.predict(m, 64) == min(memplan.line(m, 64), int(4.6 * gib))


def test_the_probe_tries_the_largest_shape_first_then_halves_between_fit_and_over():
    steps = [[100, 110, 120, 130], [400, 410, 420, 500]]
    shapes = memplan.candidate_shapes(steps, rows_cap=4, max_seq_length=512)
    # Then every shape of consecutive examples of one step is a candidate, with where it first occurs
    assert shapes[(4, 512)] == (1, 0) and shapes[(1, 128)] == (0, 0) and shapes[(2, 128)] == (0, 0)
    assert all(r * w <= 4 * 512 for r, w in shapes)
    # When nothing is known beyond one 512-token example, Then the largest shape comes first
    assert memplan.next_probe(list(shapes), fit=512, over=None, first=True) == (4, 512)
    # And once it did not fit, the next one lies halfway between (by count of shapes), above 512 tokens
    nxt = memplan.next_probe(list(shapes), fit=512, over=2048, first=False)
    assert 512 < nxt[0] * nxt[1] < 2048
    # And when no shape lies between, the search is over
    assert memplan.next_probe([(1, 512), (2, 512)], fit=512, over=1024, first=False) is None


def test_checkpointing_is_not_worth_measuring_when_even_its_best_case_is_slower():
    steps = [[500] * 8] * 10
    # Given no fixed cost a micro-batch (a device that is not idle on small ones): narrow costs nothing
    def plain(seconds_base: float) -> MemoryModel:
        return _model(modes=[MemoryMode(grad_checkpoint=False, base_bytes=100 * MB, per_token_bytes=1.0 * MB,
                                        seconds_base=seconds_base, seconds_per_token=0.001)])

    assert memplan.split(plain(0.0), [500] * 8) == [2, 2, 2, 2]
    assert not memplan.checkpointing_could_win(plain(0.0), steps)
    # Given 3 s a micro-batch: four narrow micro-batches a step (16.1 s) against two wide ones
    # with checkpointing at best (11.1 s) could lose: it is worth measuring
    assert memplan.checkpointing_could_win(plain(3.0), steps)


def test_describe_lists_the_measured_sizes_when_there_are_points():
    m = _model(modes=[_cuda_like().model_copy(update={"token_cap": 576})])
    text = memplan.describe(m)
    assert "measured 128 tokens 4.6 GB, 512 tokens 10.6 GB" in text and "at most 576 tokens a micro-batch" in text


def test_mlx_is_held_below_the_planned_share_on_a_gpu_and_to_the_budget_on_a_cpu():
    budget = 12 * GIB
    gpu, cpu = memplan.mlx_limit_bytes(budget, gpu=True), memplan.mlx_limit_bytes(budget, gpu=False)
    assert gpu < budget * (1 - memplan.MARGIN) < cpu == budget
