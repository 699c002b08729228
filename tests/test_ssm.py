"""jaxdyn.ssm: closed-form SSMs, NMTE, normal forms, SSMLearnPy parity, attractors."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdyn as jd
import jaxdyn.ssm as ssm

DATA = Path(__file__).parent / "data"
LAM, A = 3.5, 0.7  # x' = −x, y' = −λy + a x²: the SSM is y = a x²/(λ − 2)


def quadratic(lam=LAM, a=A, b=0.0):
    return jd.Flow(lambda t, s, args: jnp.stack(
        [-s[0], -lam * s[1] + a * s[0] ** 2 + b * s[0] ** 3]))


def quadratic_data(x0=jnp.linspace(-1.0, 1.0, 6), off=0.0, T=200, dt=0.05):
    """Closed-form trajectories of the quadratic system, `off` away from the SSM at t = 0."""
    c = A / (LAM - 2)
    t = jnp.arange(float(T)) * dt
    x = x0[:, None] * jnp.exp(-t)[None]
    y = c * x**2 + off * jnp.cos(7 * x0)[:, None] * jnp.exp(-LAM * t)[None]
    return jnp.stack([x, y], -1)


@pytest.fixture(scope="module")
def exact_quadratic():
    return ssm.fit(quadratic_data(), 1, 3, system=quadratic(), dt=0.05)


def test_quadratic_ssm_recovers_the_closed_form(exact_quadratic):
    m = exact_quadratic
    assert m.result == jd.RESULTS.successful
    # W's rows: η², η³; columns: x, y. The chart is the slow eigenvector e1.
    np.testing.assert_allclose(np.abs(np.asarray(m.V[:, 0])), [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(np.asarray(m.W[:, 1]), [A / (LAM - 2), 0.0], atol=1e-6)
    np.testing.assert_allclose(np.asarray(m.R[:, 0]), [-1.0, 0.0, 0.0], atol=1e-6)
    assert float(m.gap) == pytest.approx(LAM)


def test_quadratic_ssm_off_manifold_with_transient_and_finite_differences():
    data = quadratic_data(off=0.05)
    m = ssm.fit(data, 1, 2, system=quadratic(), dt=0.05, transient=8.0, derivative="fd6")
    assert abs(float(m.W[0, 1]) - A / (LAM - 2)) < 1e-6
    assert abs(float(m.R[0, 0]) + 1.0) < 1e-6
    # Without the cut the transient biases the manifold.
    biased = ssm.fit(data, 1, 2, system=quadratic(), dt=0.05)
    assert abs(float(biased.W[0, 1]) - A / (LAM - 2)) > 1e-3


def test_cubic_ssm_against_sympy():
    sp = pytest.importorskip("sympy")
    lam, a, b = 4.5, 0.7, -0.4
    x, c2, c3 = sp.symbols("x c2 c3")
    h = c2 * x**2 + c3 * x**3
    # Invariance of y = h(x) under x' = −x, y' = −λy + a x² + b x³.
    res = sp.expand(sp.diff(h, x) * (-x) - (-sp.Rational(9, 2) * h + sp.Rational(7, 10) * x**2
                                             - sp.Rational(2, 5) * x**3))
    sol = sp.solve([res.coeff(x, 2), res.coeff(x, 3)], [c2, c3])
    truth = [float(sol[c2]), float(sol[c3])]
    assert truth == pytest.approx([a / (lam - 2), b / (lam - 3)])
    system = quadratic(lam, a, b)
    x0 = jnp.linspace(-0.9, 0.9, 5)
    starts = jnp.stack([x0, truth[0] * x0**2 + truth[1] * x0**3], -1)
    data = jax.vmap(lambda s: jd.simulate(system, s, None, 8.0, dt=0.01, n_save=161).xs)(
        starts)
    m = ssm.fit(data, 1, 4, system=system, dt=0.05)
    np.testing.assert_allclose(np.asarray(m.W[:, 1]), truth + [0.0], atol=1e-6)
    np.testing.assert_allclose(np.asarray(m.R[:, 0]), [-1.0, 0, 0, 0], atol=1e-6)


def test_map_ssm_exact():
    # x⁺ = x/2 + x²/10, y⁺ = y/10 + …: the SSM is y = x² − x³/2, the reduced map x/2 + x²/10.
    def F(k, s, args):
        x, y = s
        h = lambda z: z**2 - 0.5 * z**3  # noqa: E731
        xn = 0.5 * x + 0.1 * x**2
        return jnp.stack([xn, 0.1 * (y - h(x)) + h(xn)])

    system = jd.Map(F)
    x0 = jnp.linspace(-0.8, 0.8, 5)
    data = jax.vmap(lambda x: jd.simulate(system, jnp.stack([x, x**2 - 0.5 * x**3]), None,
                                          12).xs)(x0)
    m = ssm.fit(data, 1, 4, system=system)
    np.testing.assert_allclose(np.asarray(m.W[:, 1]), [1.0, -0.5, 0.0], atol=1e-8)
    np.testing.assert_allclose(np.asarray(m.R[:2, 0]), [0.5, 0.1], atol=1e-8)
    pred = m.predict(data[0, 0], 13)
    np.testing.assert_allclose(np.asarray(pred.xs), np.asarray(data[0]), atol=1e-9)


def test_nmte_exact_model_and_noise(exact_quadratic):
    data = quadratic_data()
    assert float(jnp.max(ssm.nmte(exact_quadratic, data))) <= 1e-6
    noise = jax.random.normal(jax.random.key(0), data.shape)
    errs = [ssm.nmte(exact_quadratic, data + s * noise) for s in (1e-4, 1e-3, 1e-2)]
    means = [float(jnp.mean(e)) for e in errs]
    assert means[0] < means[1] < means[2]
    # SSMLearnPy's variant divides by max‖x‖² instead of max‖x‖.
    own = ssm.nmte(exact_quadratic, data + 1e-3 * noise, definition="ssmlearnpy")
    peak = jnp.max(jnp.linalg.norm(data + 1e-3 * noise, axis=-1), axis=1)
    np.testing.assert_allclose(np.asarray(own), np.asarray(errs[1] / peak), rtol=1e-10)


def test_cross_validation_picks_an_order_and_ridge():
    data = quadratic_data(off=0.05)
    m = ssm.fit(data, 1, (1, 2, 3), system=quadratic(), dt=0.05, ridge=[0.0, 1e-2, 1.0],
                transient=8.0)
    assert int(m.order) >= 2 and float(m.ridge) <= 1e-2
    assert np.all(np.isfinite(np.asarray(m.cv_error)))
    assert abs(float(m.W[0, 1]) - A / (LAM - 2)) < 1e-4


def test_fit_vmaps_jits_and_differentiates():
    amps = jnp.asarray([0.5, 0.7, 0.9])
    datas = jax.vmap(lambda s: quadratic_data(jnp.linspace(-s, s, 4)))(amps)
    fit = lambda d: ssm.fit(d, 1, 2, dt=0.05, chart="svd")  # noqa: E731
    batched = jax.vmap(fit)(datas)
    for i in range(3):
        one = fit(datas[i])
        np.testing.assert_allclose(np.asarray(batched.W[i]), np.asarray(one.W), atol=1e-10)
        np.testing.assert_allclose(np.asarray(batched.R[i]), np.asarray(one.R), atol=1e-10)

    # The manifold coefficient is a/(λ − 2): its derivative in a is 1/(λ − 2).
    def coeff(a):
        x = quadratic_data()[..., 0]
        d = jnp.stack([x, a / (LAM - 2) * x**2], -1)
        return ssm.fit(d, 1, 2, dt=0.05, system=quadratic(a=a)).W[0, 1]

    vg = jax.jit(jax.value_and_grad(coeff))
    _, g = vg(jnp.asarray(A))
    fd = (vg(jnp.asarray(A + 1e-5))[0] - vg(jnp.asarray(A - 1e-5))[0]) / 2e-5
    assert float(g) == pytest.approx(1 / (LAM - 2), rel=1e-6)
    assert float(g) == pytest.approx(float(fd), rel=1e-6)


def test_bad_input_raises():
    data = quadratic_data()
    with pytest.raises(ValueError, match="dim"):
        ssm.fit(data, 2, 3)
    with pytest.raises(ValueError, match="order"):
        ssm.fit(data, 1, 0)
    with pytest.raises(ValueError, match="delay window"):
        ssm.fit(data[:, :6], 1, 2, delays=3)
    with pytest.raises(ValueError, match="`dt`"):
        ssm.fit(data, 1, 2, dt=-0.05)
    with pytest.raises(ValueError, match="finite"):
        ssm.fit(data.at[0, 3, 1].set(jnp.nan), 1, 2)
    with pytest.raises(ValueError, match="3-D"):
        ssm.fit(data[0], 1, 2)
    with pytest.raises(ValueError, match="mask"):
        ssm.fit(data, 1, 2, mask=jnp.ones((6, 200), bool).at[0, 5].set(False))
    with pytest.raises(ValueError, match="chart"):
        ssm.fit(data, 1, 2, chart="jacobian")
    with pytest.raises(ValueError, match="splits"):
        osc = jd.Flow(lambda t, s, a: jnp.stack([s[1], -s[0] - 0.1 * s[1], -3.0 * s[2]]))
        ssm.fit(jnp.ones((2, 20, 3)), 1, 2, system=osc)


def test_ragged_lengths_by_mask():
    data = quadratic_data()
    mask = jnp.arange(200)[None, :] < jnp.asarray([200, 150, 120, 200, 90, 200])[:, None]
    padded = jnp.where(mask[..., None], data, 0.0)
    m = ssm.fit(padded, 1, 3, dt=0.05, system=quadratic(), mask=mask, derivative="fd6")
    assert abs(float(m.W[0, 1]) - A / (LAM - 2)) < 1e-6
    assert float(jnp.max(ssm.nmte(m, padded, mask=mask))) < 1e-6


# ---- precision: float32, undetermined coefficients, no data ------------------------------------

ROOT = Path(__file__).parent.parent


def _readme_ssm_lines():
    """The SSM lines of README's quick start, as pasted."""
    text = (ROOT / "README.md").read_text()
    block = text[text.index("slow = jd.Flow"):text.index("reduced = ssm.fit")]
    end = text.index("\n", text.index("reduced = ssm.fit"))
    return block + text[text.index("reduced = ssm.fit"):end] + "\n"


def _docs_example(x64: bool):
    """docs/ssm.md's first example, as pasted (`x64=False`: without its jax_enable_x64 line)."""
    text = (ROOT / "docs" / "ssm.md").read_text()
    start = text.index("```python\n") + len("```python\n")
    code = text[start:text.index("```", start)]
    if not x64:
        code = "\n".join(ln for ln in code.splitlines() if "jax_enable_x64" not in ln)
    return code


def test_readme_and_docs_examples_in_float32_match_float64():
    # README's quick start runs in float32 by default: its W must print as its comment says.
    ns = {}
    with jax.enable_x64(False):
        exec("import jax, jax.numpy as jnp\nimport jaxdyn as jd\nimport jaxdyn.ssm as ssm\n"
             + _readme_ssm_lines(), ns)
        readme = ns["reduced"]
        err = np.asarray(ssm.nmte(readme, ns["data"]))
    assert readme.W.dtype == jnp.float32 and readme.result == jd.RESULTS.successful
    np.testing.assert_array_equal(np.round(np.asarray(readme.W[:, 1], np.float64), 4),
                                  [0.4667, 0.0])
    assert err.max() < 1e-5
    # The float32 coefficients are the closed form (what float64 gives to 1e-15) to float32's
    # working precision (the chart spans [−1, 1], the data are O(1)): W's η² row 0.7/1.5,
    # R = −η.
    eps32 = float(np.finfo(np.float32).eps)
    np.testing.assert_allclose(np.asarray(readme.W, np.float64), [[0.0, A / (LAM - 2)],
                                                                  [0.0, 0.0]], atol=50 * eps32)
    np.testing.assert_allclose(np.asarray(readme.R[:, 0], np.float64), [-1.0, 0.0, 0.0],
                               atol=50 * eps32)

    # docs/ssm.md's example without its x64 line: after transient=8 the data are 3e-4 of
    # their start, so a cubic term is rounding noise (η³ ~ 4e-11, below float32's resolution
    # of the data) that would be amplified 10⁷-fold over the data's range. The old fit
    # reported R's cubic as 3.74 with status `successful` and predictions that blew up.
    ns = {}
    with jax.enable_x64(False):
        exec(_docs_example(x64=False), ns)
        m32, data32, pred = ns["model"], ns["data"], ns["pred"]
        err32 = np.asarray(ssm.nmte(m32, data32))
    assert m32.R.dtype == jnp.float32
    assert m32.result == jd.RESULTS.undetermined_coefficients
    assert int(m32.order) == 2 and int(m32.dynamics_order) == 2
    np.testing.assert_array_equal(np.asarray(m32.determined), [True, False])
    np.testing.assert_array_equal(np.asarray(m32.dynamics_determined), [True, True, False])
    assert float(m32.W[1, 1]) == 0.0 and float(m32.R[2, 0]) == 0.0
    np.testing.assert_array_equal(np.round(np.asarray(m32.W[:, 1], np.float64), 5),
                                  [0.46667, 0.0])
    assert pred.result == jd.RESULTS.successful
    # float64 on the same data determines everything; the kept coefficients agree within
    # what float32 resolves over the data's range (η up to 1: |Δc| is the change of the
    # model at the edge).
    m64 = ssm.fit(jnp.asarray(data32, jnp.float64), 1, 3, system=ns["system"], dt=0.05,
                  transient=8.0)
    assert m64.result == jd.RESULTS.successful
    assert bool(jnp.all(m64.determined)) and bool(jnp.all(m64.dynamics_determined))
    np.testing.assert_allclose(np.asarray(m32.W, np.float64), np.asarray(m64.W), atol=1e-4)
    np.testing.assert_allclose(np.asarray(m32.R, np.float64), np.asarray(m64.R), atol=1e-3)
    assert abs(float(m64.R[2, 0])) < 1e-6  # the truth is 0 (x' = −x)
    # The predictions from every start (3000× the fitted range) stay finite: the old fit's
    # cubic blew them up (NMTE inf).
    assert np.all(np.isfinite(err32)) and err32.max() < 0.01


def test_undetermined_coefficients_are_dropped_with_a_status():
    # float64 too: after t = 17 the chart spans 4e-8 of the data's range, so a cubic term's
    # rounding (2e-16 of the data) is amplified by (1/4e-8)² ~ 6e14 over that range.
    data = quadratic_data(T=400)
    m = ssm.fit(data, 1, 3, system=quadratic(), dt=0.05, transient=17.0)
    assert m.result == jd.RESULTS.undetermined_coefficients
    assert int(m.dynamics_order) == 2 and int(m.order) == 2
    np.testing.assert_array_equal(np.asarray(m.dynamics_determined), [True, True, False])
    np.testing.assert_allclose(np.asarray(m.R[:, 0]), [-1.0, 0.0, 0.0], atol=1e-7)
    assert float(m.R[2, 0]) == 0.0
    assert abs(float(m.W[0, 1]) - A / (LAM - 2)) < 1e-6 and float(m.W[1, 1]) == 0.0
    # A shorter transient determines every coefficient.
    ok = ssm.fit(data, 1, 3, system=quadratic(), dt=0.05, transient=8.0)
    assert ok.result == jd.RESULTS.successful and bool(jnp.all(ok.dynamics_determined))


def test_no_data_or_degenerate_data():
    data = quadratic_data()
    with pytest.raises(ValueError, match="`transient`=20 leaves no samples"):
        ssm.fit(data, 1, 2, system=quadratic(), dt=0.05, transient=20.0)
    with pytest.raises(ValueError, match="`transient`=9.85 leaves no samples"):
        ssm.fit(data, 1, 2, system=quadratic(), dt=0.05, transient=9.85, derivative="fd6")
    with pytest.raises(ValueError, match="`trajectories` do not move.*all zero"):
        ssm.fit(jnp.zeros_like(data), 1, 2, system=quadratic(), dt=0.05)
    with pytest.raises(ValueError, match="`trajectories` do not move.*constant"):
        ssm.fit(jnp.full_like(data, 0.3), 1, 2, dt=0.05, chart="svd")
    # Traced (inside jit) the same inputs give a status instead of a zero "successful" model.
    fit = jax.jit(lambda d, tr: ssm.fit(d, 1, 2, system=quadratic(), dt=0.05,
                                        transient=tr).result)
    assert fit(data, 0.0) == jd.RESULTS.successful
    assert fit(data, 20.0) == jd.RESULTS.degenerate_data
    assert fit(jnp.zeros_like(data), 0.0) == jd.RESULTS.degenerate_data


# ---- normal form and backbone ---------------------------------------------------------------

def test_cubic_normal_form_closed_form():
    # A 1-DOF oscillator with quadratic and cubic stiffness, plus a fast decoupled mode: the
    # SSM is the oscillator's plane exactly, so γ must match the closed form.
    c, a2, a3 = 0.05, 0.3, 0.8
    osc = jd.Flow(lambda t, s, args: jnp.stack(
        [s[1], -c * s[1] - s[0] - a2 * s[0] ** 2 - a3 * s[0] ** 3, -5.0 * s[2]]))
    starts = jnp.asarray([[0.3, 0.0, 0.1], [0.0, 0.2, -0.1], [-0.2, 0.1, 0.05]])
    data = jax.vmap(lambda s: jd.simulate(osc, s, None, 20.0, dt=0.05).xs)(starts)
    m = ssm.fit(data, 2, 3, system=osc, dt=0.05, transient=10.0)
    nf = ssm.normal_form(m)
    wd = np.sqrt(1 - c**2 / 4)
    num = (-24j * a2**2 * c - 80 * a2**2 * wd + 3j * a3 * c**3 + 18 * a3 * c**2 * wd
           + 12j * a3 * c * wd**2 + 72 * a3 * wd**3)
    den = 2 * wd * (c**3 - 6j * c**2 * wd + 4 * c * wd**2 - 24j * wd**3)
    assert complex(nf.gamma) == pytest.approx(num / den, rel=1e-6)
    assert complex(nf.eigenvalue) == pytest.approx(-c / 2 + 1j * wd, rel=1e-9)


ZETA, OMEGA, KAPPA = 0.05, 1.3, 0.6


def _duffing(t, s, args):
    # x'' + 2ζω x' + ω² x + κ x³ = 0, and a decoupled fast mode (so the full state has a
    # 2-D SSM).
    x, v, w = s
    return jnp.stack([v, -2 * ZETA * OMEGA * v - OMEGA**2 * x - KAPPA * x**3, -6.0 * w])


@pytest.fixture(scope="module")
def duffing_model():
    amps, ph = jnp.linspace(0.05, 0.2, 6), jnp.linspace(0.0, 2.5, 6)
    starts = jnp.stack([amps * jnp.cos(ph), -OMEGA * amps * jnp.sin(ph), jnp.zeros(6)], -1)
    data = jax.vmap(lambda s: jd.simulate(jd.Flow(_duffing), s, None, 60.0, dt=0.1,
                                          solver="dopri8").xs)(starts)
    # Observed through x alone, in a 5-fold delay embedding.
    return ssm.fit(data[..., :1], 2, 3, dt=0.1, delays=5), data


def test_duffing_backbone(duffing_model):
    model, _ = duffing_model
    nf = ssm.normal_form(model)
    # Duffing's backbone ω(a) = ω + 3κ a²/(8ω) to first order (up to O(ζ²)).
    wd = OMEGA * np.sqrt(1 - ZETA**2)
    a = jnp.linspace(0.02, 0.2, 10)
    freq, damp = nf.backbone(a)
    np.testing.assert_allclose(np.asarray(freq - wd),
                               np.asarray(3 * KAPPA * a**2 / (8 * OMEGA)), rtol=3e-3)
    # Linear damping: the damping backbone is flat at ζω.
    np.testing.assert_allclose(np.asarray(damp), ZETA * OMEGA, rtol=1e-3)
    # A linear model's shift is zero: the test above tells them apart.
    assert "NormalForm" in repr(nf)
    nf.plot(0.3)


def test_duffing_backbone_from_delays_matches_full_state(duffing_model):
    model, data = duffing_model
    truth = 3 * KAPPA / (8 * OMEGA)
    full = ssm.normal_form(ssm.fit(data, 2, 3, system=jd.Flow(_duffing), dt=0.1))
    delay = ssm.normal_form(model)
    assert float(full.frequency_coefficient) == pytest.approx(truth, rel=3e-3)
    assert float(delay.frequency_coefficient) == pytest.approx(truth, rel=3e-3)
    assert float(delay.frequency_coefficient) == pytest.approx(
        float(full.frequency_coefficient), rel=1e-3)
    # In the delay chart's own modal coordinate the cubic coefficient carries a bias
    # proportional to the damping (−2.4 % here); the full-state chart has none.
    assert float(jnp.imag(delay.chart_gamma)) / 4 < truth * (1 - 1e-2)
    assert complex(full.chart_gamma) == pytest.approx(complex(full.gamma), rel=1e-9)
    assert float(full.backbone(0.2)[1]) == pytest.approx(ZETA * OMEGA, rel=1e-3)


def test_delay_embedded_prediction(duffing_model):
    model, data = duffing_model
    err = ssm.nmte(model, data[:2, :, :1])
    assert float(jnp.max(err)) < 1e-3
    model.plot(data[:2, :400, :1])


# ---- SSMLearnPy on identical data -------------------------------------------------------------

K2 = jnp.asarray([[2.0, -1.0], [-1.0, 2.0]])


def two_dof(t, s, args):
    C = 0.01 * jnp.eye(2) + 0.01 * K2
    q, v = s[:2], s[2:]
    return jnp.concatenate([v, -K2 @ q - C @ v - jnp.stack([0.5 * q[0] ** 3, 0.0 * q[0]])])


def test_against_ssmlearnpy_reference():
    ref = np.load(DATA / "ssm_reference.npz")
    # RK4 at a fifth of the sampling step: a cheap compile, within 1e-7 of the reference data.
    xs = jax.vmap(lambda s: jd.simulate(jd.Flow(two_dof), s, None, 120.0, dt=0.01,
                                        n_save=2401).xs)(jnp.asarray(ref["x0"]))
    np.testing.assert_allclose(np.asarray(xs[:, ::40]), ref["data_sub"], atol=1e-6)
    train = xs[:6]
    # SSMLearnPy's recipe: SVD chart of the uncentred data, free linear part, findiff stencils.
    m = ssm.fit(train, 2, 3, dynamics_order=5, dt=0.05, chart="svd", free_linear=True,
                derivative="fd4")
    geo = np.asarray(m.lift(m.reduce(train)))[:, ::40]
    scale = np.max(np.abs(ref["geometry_sub"]))
    assert np.max(np.abs(geo - ref["geometry_sub"])) / scale < 1e-2
    np.testing.assert_allclose(np.abs(np.asarray(m.P)), np.abs(ref["chart"].T), atol=1e-8)
    ours = np.asarray(ssm.nmte(m, train))
    assert ours.mean() <= ref["nmte_paper"].mean()
    lam = np.linalg.eigvals(np.asarray(jax.jacfwd(m.vector_field)(jnp.zeros(2))))
    np.testing.assert_allclose(np.sort_complex(lam), np.sort_complex(ref["eigenvalues"]),
                               rtol=1e-6)


# ---- parameter-dependent SSM ------------------------------------------------------------------

def test_parameter_dependent_ssm_and_reduced_fixed_points():
    # x' = p − x², y' = −3(y − x²) + 2x(p − x²): the SSM y = x² for every p, reduced flow
    # η' = μ − 2η − η² in η = x − 1, μ = p − 1 (anchor (1, 1) at p = 1).
    system = jd.Flow(lambda t, s, p: jnp.stack(
        [p - s[0] ** 2, -3 * (s[1] - s[0] ** 2) + 2 * s[0] * (p - s[0] ** 2)]))
    ps = jnp.repeat(jnp.asarray([0.5, 1.0, 1.5, 2.0]), 2)
    x0 = jnp.asarray([0.2, 2.0] * 4)
    data = jax.vmap(lambda x, p: jd.simulate(system, jnp.stack([x, x**2]), p, 6.0, dt=0.005,
                                             n_save=121).xs)(x0, ps)
    m = ssm.fit(data, 1, 2, system=system, fixed_point=jnp.ones(2), params=ps, param_ref=1.0,
                param_order=1, dt=0.05)
    assert m.parametric
    # In the state: x = 1 + V₀ η, so x' = V₀ R(η, p) must equal p − x².
    eta = jnp.asarray([[0.1], [-0.2]])
    x = 1.0 + m.V[0, 0] * eta[:, 0]
    for p in (0.5, 2.0):
        np.testing.assert_allclose(np.asarray(m.V[0, 0] * m.vector_field(eta, p)[:, 0]),
                                   np.asarray(p - x**2), atol=1e-8)
    # Reduced fixed points across the parameter, through jd.fixed_points on the reduced system.
    pgrid = jnp.linspace(0.6, 2.0, 5)
    found = m.fixed_points(jnp.zeros((5, 1)), pgrid, args_axis=0)
    assert bool(jnp.all(found.converged)) and bool(jnp.all(found.stability == 0))
    lifted = jax.vmap(m.lift)(found.x, pgrid)
    np.testing.assert_allclose(np.asarray(lifted[:, 0]), np.sqrt(np.asarray(pgrid)), atol=1e-8)
    np.testing.assert_allclose(np.asarray(lifted[:, 1]), np.asarray(pgrid), atol=1e-8)
    # The same reduced system is what `jd.continuation(m.system, η0, p0, ...)` takes.
    assert isinstance(m.system, jd.AbstractFlow) and m.system.state_size == 1


# ---- attractors of the committed trained networks ---------------------------------------------

def _relaxations(model, task, n=32, steps=80):
    trial = task.sample(jax.random.PRNGKey(0), 16)
    states, _ = jax.vmap(lambda u: model.run(None, u))(trial.inputs)
    starts = states[:, 20::20].reshape(-1, states.shape[-1])[:n]
    rel, _ = jax.vmap(lambda x: model.run(x, jnp.zeros((steps, task.n_in))))(starts)
    return jnp.concatenate([starts[:, None], rel], 1)


@pytest.mark.slow
def test_integrator_is_a_line_attractor(trained_network):
    model, task = trained_network("integrator")
    data = _relaxations(model, task)
    u0 = jnp.zeros(task.n_in)
    m = ssm.fit(data, 1, 3, system=model, fixed_point=data[0, -1], args=u0, transient=10)
    att = ssm.classify(m, system=model, args=u0)
    assert int(att.kind) == 0, att
    assert float(att.slowness) < 0.02 and float(att.extent) > 2.0
    assert int(ssm.classify(m, trajectories=data).kind) == 0


@pytest.mark.slow
def test_angular_integrator_is_a_ring_attractor(trained_network):
    model, task = trained_network("angular")
    data = _relaxations(model, task)
    ring = ssm.fit_ring(data, 4, system=model, transient=10)
    att = ssm.classify(ring, trajectories=data)
    assert int(att.kind) == 1, att
    assert float(att.slowness) < 0.02
    ring.plot(data[:4])


@pytest.mark.slow
def test_flipflop_has_isolated_fixed_points(trained_network):
    model, task = trained_network("flipflop")
    u0 = jnp.zeros(task.n_in)
    pts = np.asarray(_relaxations(model, task, n=16, steps=150)[:, -1])  # at stable points
    signs = np.sign(np.asarray(jax.vmap(model.readout)(jnp.asarray(pts))))
    j = next(i for i in range(1, len(pts)) if np.sum(signs[i] != signs[0]) == 1)
    # States between two memories that differ in one bit relax to one or the other, along the
    # 1-D manifold through the saddle between them.
    mids = jnp.asarray(np.linspace(0.1, 0.9, 9)[:, None] * (pts[j] - pts[0]) + pts[0])
    rel, _ = jax.vmap(lambda x: model.run(x, jnp.zeros((100, task.n_in))))(mids)
    between = jnp.concatenate([mids[:, None], rel], 1)
    m = ssm.fit(between, 1, 5, system=model, fixed_point=pts[0], args=u0, chart="svd")
    att = ssm.classify(m, system=model, args=u0)
    assert int(att.kind) == 2, att
    assert float(att.slowness) > 0.1
    # The saddle (unstable along the manifold) and the other memory (stable) inside the data.
    assert int(att.n_fixed_points) == 2
    np.testing.assert_array_equal(np.asarray(att.stable[:2]), [False, True])
