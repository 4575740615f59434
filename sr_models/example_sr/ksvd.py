"""Batch OMP and approximate K-SVD, as Zeyde et al.'s code calls them (Rubinstein's ompbox / ksvdbox).

Zeyde et al. (2010) learn the LR dictionary with ``ksvd(ksvd_conf)`` of Rubinstein's ksvdbox
(``iternum`` 20, ``dictsize`` 1024, ``Tdata`` 3, ``memusage 'normal'``; SPEC §7.4), whose defaults are
the *approximate* K-SVD (``exact = 0``; Rubinstein, Zibulevsky and Elad, "Efficient implementation of
the K-SVD algorithm using batch orthogonal matching pursuit", 2008). One iteration, as ``ksvd.m`` does it:

1. sparse-code every signal with OMP, ``sparsity`` atoms each;
2. visit the atoms in a random order (``randperm``); for atom j used by the signals I with
   coefficients g: ``d_j = E_j g / |E_j g|`` and ``g = E_j^T d_j``, where ``E_j = X_I - D Gamma_I +
   d_j g^T`` is the residual without atom j (one power-method step instead of an SVD); the codes are
   updated in place, so later atoms see the new ones. An atom no signal uses is replaced by the
   worst-represented of up to 5000 random not-yet-used signals (``optimize_atom``);
3. ``cleardict``: an atom used by fewer than 4 signals, or whose squared coherence with another atom
   exceeds 0.99^2, is replaced by the not-yet-used signal with the largest representation error.

The initial dictionary is ``dictsize`` random signals with squared norm above 1e-6, normalised; the
codes returned with the dictionary are computed again with the final dictionary.

OMP: the Gram-matrix variant (``omp(D'X, D'D, T)`` of ompbox, ``orthogonal_mp_gram`` of scikit-learn),
vectorised over signals here: scikit-learn's loops over signals in Python and copies the K x K Gram
matrix for each (about 0.6 ms per signal with 1024 atoms, i.e. minutes per K-SVD iteration); the steps
and stopping rules are the same, and the tests check the codes against ``orthogonal_mp_gram``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import sparse

REPLACEMENT_CANDIDATES = 5000  # optimize_atom: maxsignals = 5000
USE_THRESHOLD = 4  # cleardict: use_thresh = 4
COHERENCE_THRESHOLD = 0.99  # ksvd.m: muthresh = 0.99
INIT_MIN_NORM_SQUARED = 1e-6  # ksvd.m: data_ids = find(colnorms_squared(data) > 1e-6)
USED = 1e-7  # cleardict: usecount = sum(abs(Gamma) > 1e-7, 2)
OMP_CHUNK = 2048  # signals per vectorised OMP block (a few chunk x atoms arrays in memory)
_EPS = np.finfo(np.float64).eps


class SparseCodes:
    """Codes with at most ``sparsity`` atoms per signal: ``atoms[i, t]`` and ``values[i, t]``
    (unused slots: atom 0, value 0)."""

    def __init__(self, atoms: np.ndarray, values: np.ndarray):
        self.atoms, self.values = atoms, values

    def dense_rows(self, dictionary: np.ndarray) -> np.ndarray:
        """The reconstruction ``Gamma^T D`` as (signals, dimensions) rows of a (K, dim) dictionary."""
        return np.einsum("nt,ntd->nd", self.values, dictionary[self.atoms])

    def usage(self, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each atom, the (signals, slots) that use it with a non-zero coefficient."""
        signals, slots = np.nonzero(self.values)
        atoms = self.atoms[signals, slots]
        order = np.argsort(atoms, kind="stable")
        bounds = np.searchsorted(atoms[order], np.arange(count + 1))
        return [(signals[order[a:b]], slots[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def omp_gram(gram: np.ndarray, correlations: np.ndarray, sparsity: int) -> SparseCodes:
    """OMP of each row of ``correlations`` (signals x atoms, ``X^T D``) with the Gram matrix ``D^T D``.

    Per signal, as ``orthogonal_mp_gram``: pick the atom of largest |residual correlation|, stop early
    when that correlation squared is below machine epsilon, when the atom is already chosen, or when it
    depends linearly on the chosen ones; otherwise least squares on the chosen atoms."""
    count = correlations.shape[0]
    atoms = np.zeros((count, sparsity), dtype=np.int64)
    values = np.zeros((count, sparsity))
    for start in range(0, count, OMP_CHUNK):
        block = slice(start, start + OMP_CHUNK)
        atoms[block], values[block] = _omp_block(gram, np.asarray(correlations[block], dtype=np.float64), sparsity)
    return SparseCodes(atoms, values)


def _omp_block(gram: np.ndarray, xy: np.ndarray, sparsity: int) -> tuple[np.ndarray, np.ndarray]:
    count = xy.shape[0]
    rows = np.arange(count)
    atoms = np.zeros((count, sparsity), dtype=np.int64)
    values = np.zeros((count, sparsity))
    alive = np.ones(count, dtype=bool)
    residual = xy  # replaced, never written in place
    for step in range(sparsity):
        chosen = np.argmax(np.abs(residual), axis=1)
        peak = residual[rows, chosen]
        stop = peak**2 < _EPS
        if step:
            stop |= (atoms[:, :step] == chosen[:, None]).any(axis=1)
            # Schur complement of the new atom against the chosen ones: <= eps means linear dependence
            previous = gram[atoms[:, :step, None], atoms[:, None, :step]]
            cross = gram[atoms[:, :step], chosen[:, None]]
            candidates = np.flatnonzero(alive & ~stop)
            solved = np.linalg.solve(previous[candidates], cross[candidates][..., None])[..., 0]
            schur = gram[chosen[candidates], chosen[candidates]] - np.einsum("ns,ns->n", cross[candidates], solved)
            stop[candidates[schur <= _EPS]] = True
        alive &= ~stop
        live = np.flatnonzero(alive)
        if not len(live):
            break
        atoms[live, step] = chosen[live]
        active = atoms[live, : step + 1]
        system = gram[active[:, :, None], active[:, None, :]]
        coefficients = np.linalg.solve(system, xy[live[:, None], active][..., None])[..., 0]
        values[live, : step + 1] = coefficients
        # residual correlations X^T D - Gamma^T D^T D for every row (rows already stopped are not read again)
        taken = step + 1
        codes = sparse.csr_matrix(
            (values[:, :taken].ravel(), atoms[:, :taken].ravel(), np.arange(0, count * taken + 1, taken)),
            shape=(count, len(gram)),
        )
        residual = xy - codes @ gram
    return atoms, values


def sparse_code(dictionary: np.ndarray, signals: np.ndarray, sparsity: int) -> SparseCodes:
    """OMP codes of (n, d) signals over a (K, d) dictionary of unit-norm rows."""
    return omp_gram(dictionary @ dictionary.T, signals @ dictionary.T, sparsity)


def ksvd(
    signals: np.ndarray,
    atoms: int,
    iterations: int,
    sparsity: int,
    rng: np.random.Generator,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, SparseCodes]:
    """Approximate K-SVD of (n, d) signals: a (atoms, d) dictionary of unit rows and the final codes."""
    signals = np.asarray(signals, dtype=np.float64)
    count = signals.shape[0]
    candidates = np.flatnonzero(np.einsum("nd,nd->n", signals, signals) > INIT_MIN_NORM_SQUARED)
    if len(candidates) < atoms:
        raise ValueError(
            f"K-SVD needs at least {atoms} non-flat training patches for {atoms} atoms, got {len(candidates)}"
        )
    dictionary = signals[candidates[rng.permutation(len(candidates))[:atoms]]]
    dictionary = dictionary / np.linalg.norm(dictionary, axis=1, keepdims=True)
    for iteration in range(iterations):
        codes = sparse_code(dictionary, signals, sparsity)
        unused = np.ones(count, dtype=bool)  # signals not yet taken to replace an atom this iteration
        replaced = np.zeros(atoms, dtype=bool)
        usage = codes.usage(atoms)
        for atom in rng.permutation(atoms):
            _update_atom(signals, dictionary, codes, int(atom), usage[atom], unused, replaced, rng)
        _clear_dictionary(signals, dictionary, codes, unused, replaced)
        if progress:
            progress(iteration + 1, iterations)
    return dictionary, sparse_code(dictionary, signals, sparsity)


def _update_atom(signals, dictionary, codes, atom, usage, unused, replaced, rng) -> None:
    users, slots = usage
    if not len(users):
        pool = np.flatnonzero(unused)
        if not len(pool):
            return
        pool = pool[rng.permutation(len(pool))[:REPLACEMENT_CANDIDATES]]
        errors = _errors(signals[pool], codes.values[pool], codes.atoms[pool], dictionary)
        best = pool[int(np.argmax(errors))]
        norm = np.linalg.norm(signals[best])
        if norm > 0:
            dictionary[atom] = signals[best] / norm
        unused[best] = False
        replaced[atom] = True
        return
    weights = codes.values[users, slots]
    user_signals = signals[users]
    user_atoms, user_values = codes.atoms[users], codes.values[users]
    # Gamma_I g as a K-vector, then E_j g = X_I g - D Gamma_I g + d_j (g . g)
    mixed = np.bincount(user_atoms.ravel(), weights=(user_values * weights[:, None]).ravel(), minlength=len(dictionary))
    direction = weights @ user_signals - mixed @ dictionary + dictionary[atom] * (weights @ weights)
    norm = np.linalg.norm(direction)
    if norm == 0:
        return
    direction /= norm
    # g = E_j^T d_j = X_I^T d_j - Gamma_I^T (D^T d_j) + (d_j_old . d_j) g
    projected = dictionary @ direction
    new_weights = (
        user_signals @ direction - np.einsum("nt,nt->n", projected[user_atoms], user_values) + projected[atom] * weights
    )
    dictionary[atom] = direction
    codes.values[users, slots] = new_weights


def _errors(signals: np.ndarray, values: np.ndarray, atoms: np.ndarray, dictionary: np.ndarray) -> np.ndarray:
    residual = signals - np.einsum("nt,ntd->nd", values, dictionary[atoms])
    return np.einsum("nd,nd->n", residual, residual)


def _clear_dictionary(signals, dictionary, codes, unused, replaced) -> None:
    """ksvdbox ``cleardict``: replace rarely used and near-duplicate atoms, in atom order."""
    errors = _errors(signals, codes.values, codes.atoms, dictionary)
    used = np.bincount(codes.atoms[np.abs(codes.values) > USED], minlength=len(dictionary))
    for atom in range(len(dictionary)):
        if replaced[atom]:
            continue
        coherence = dictionary @ dictionary[atom]
        coherence[atom] = 0
        if np.max(coherence**2) > COHERENCE_THRESHOLD**2 or used[atom] < USE_THRESHOLD:
            pool = np.flatnonzero(unused)
            if not len(pool):
                return
            best = pool[int(np.argmax(errors[pool]))]
            norm = np.linalg.norm(signals[best])
            if norm > 0:
                dictionary[atom] = signals[best] / norm
            unused[best] = False
