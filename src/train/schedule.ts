/**
 * Learning-rate schedules as pure functions of the step (or epoch) counter. Steps may be
 * fractional (epoch + batch / batches) so the same function serves per-step and per-epoch use.
 */

export interface WarmupCosine {
  /** Length of the whole schedule in steps (warm-up included). */
  readonly totalSteps: number;
  readonly warmupSteps: number;
  /** The rate the warm-up starts from (the paper: 5e-5). */
  readonly warmupInitLr: number;
  /** Reached at the end of the warm-up. */
  readonly maxLr: number;
  /** Reached at the end of the schedule (the paper: 1e-5). */
  readonly minLr: number;
}

/**
 * Linear warm-up from warmupInitLr (step 0) to maxLr (step warmupSteps), then a half cosine down
 * to minLr at totalSteps; constant at minLr after that:
 *   s < W:  lr = init + (max − init)·s/W
 *   s ≥ W:  lr = min + ½(max − min)(1 + cos(π·(s − W)/(T − W)))
 */
export function warmupCosineLr(step: number, s: WarmupCosine): number {
  if (!(s.totalSteps > 0)) throw new Error(`warmupCosineLr: totalSteps must be positive, got ${s.totalSteps}`);
  if (!(s.warmupSteps >= 0 && s.warmupSteps <= s.totalSteps)) {
    throw new Error(`warmupCosineLr: warmupSteps must be in [0, totalSteps], got ${s.warmupSteps} of ${s.totalSteps}`);
  }
  const t = Math.max(0, step);
  if (t < s.warmupSteps) return s.warmupInitLr + ((s.maxLr - s.warmupInitLr) * t) / s.warmupSteps;
  return cosineDecayLr(t, s);
}

/**
 * The decay part of `warmupCosineLr` alone: maxLr until warmupSteps, then the half cosine down to
 * minLr at totalSteps (the schedule a training loop warms up towards).
 */
export function cosineDecayLr(step: number, s: Omit<WarmupCosine, 'warmupInitLr'>): number {
  const t = Math.max(0, step);
  if (t < s.warmupSteps) return s.maxLr;
  const span = s.totalSteps - s.warmupSteps;
  const progress = span === 0 ? 1 : Math.min(1, (t - s.warmupSteps) / span);
  return s.minLr + 0.5 * (s.maxLr - s.minLr) * (1 + Math.cos(Math.PI * progress));
}

export interface StepDecay {
  readonly baseLr: number;
  /** Factor applied at each milestone (the SSFER code: 0.1). */
  readonly gamma: number;
  /** Epochs at which the rate is multiplied by gamma (the SSFER code: 20, 40). */
  readonly milestones: readonly number[];
}

/** torch.optim.lr_scheduler.MultiStepLR: baseLr · gamma^(number of milestones ≤ epoch). */
export function stepDecayLr(epoch: number, s: StepDecay): number {
  const passed = s.milestones.filter((m) => m <= epoch).length;
  return s.baseLr * Math.pow(s.gamma, passed);
}

export interface TimmCosine {
  /** Epochs of the cosine (timm's t_initial; the authors: epochs // 2). */
  readonly tInitial: number;
  /** Warm-up epochs (timm's warmup_t) and the rate they start from (warmup_lr_init). */
  readonly warmupT: number;
  readonly warmupLrInit: number;
  readonly lrMax: number;
  readonly lrMin: number;
}

/**
 * timm's CosineLRScheduler._get_lr(t) with the authors' arguments (cycle_mul 1, cycle_decay 1,
 * cycle_limit 1, k_decay 1, warmup_prefix False, no noise):
 *   t < W:   lr = init + t·((max − init)/W)
 *   t < T:   lr = min + ½(max − min)(1 + cos(π·t/T))      (t counts from 0, the warm-up included)
 *   t ≥ T:   lr = min                                       (the cycle limit is reached)
 * Operations are in timm's order so the rates agree with it to the last bit where IEEE allows.
 */
export function timmCosineLr(t: number, s: TimmCosine): number {
  if (!(s.tInitial > 0)) throw new Error(`timmCosineLr: t_initial must be positive, got ${s.tInitial}`);
  if (t < s.warmupT) return s.warmupLrInit + t * ((s.lrMax - s.warmupLrInit) / s.warmupT);
  const cycle = Math.floor(t / s.tInitial);
  if (cycle >= 1) return s.lrMin;
  return s.lrMin + 0.5 * (s.lrMax - s.lrMin) * (1 + Math.cos((Math.PI * (t - s.tInitial * cycle)) / s.tInitial));
}

/**
 * The rate of the authors' supervised stage at batch `batch` of epoch `epoch`: they call
 * scheduler.step_update(num_updates = epoch) after every step with t_in_epochs False, so the
 * rate changes once per epoch, after the epoch's first step — that step still runs at the rate
 * of the epoch before.
 */
export function authorsEpochCosineLr(epoch: number, batch: number, s: TimmCosine): number {
  return timmCosineLr(batch === 0 ? Math.max(0, epoch - 1) : epoch, s);
}
