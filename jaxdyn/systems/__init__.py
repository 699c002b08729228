"""Classic reference systems with documented parameters and known answers.

Each factory returns a final `eqx.Module` that is a `jd.Flow`-like (`AbstractFlow`) or
`jd.Map`-like (`AbstractMap`) system `f(t, x, args)`, with its parameters stored as array
fields and a fixed `state_size`.

**The `args` convention.** `args` is the system's *primary bifurcation parameter*, the one
continuation sweeps. When not None it overrides the stored value; when None the stored value
is used, so `lorenz()(t, x, 20.0) == lorenz(rho=20.0)(t, x, None)`:

| system | `args` |
| --- | --- |
| `lorenz` | ρ (scalar) |
| `rossler` | c |
| `van_der_pol` | μ |
| `duffing` | γ, the forcing amplitude |
| `double_gyre` | ε |
| `brusselator` | b |
| `saddle_node`, `pitchfork` | r |
| `cusp` | the pair `(a, b)`, an array of length 2 |
| `hopf` | μ |
| `bratu` | λ |
| `beer_ctrnn` | the external input vector `I`, shape `(n,)` |
| `logistic` | r |
| `henon` | a |
| `tanh_rnn` | the input vector `u` added inside the tanh, shape `(n,)` |

Known answers: `equilibria(args=None)` (rows of an array, NaN where a branch does not exist)
on `lorenz`, `rossler`, `van_der_pol`, `brusselator`, `saddle_node`, `pitchfork`, `cusp`,
`hopf`, `logistic` and `henon`; `hopf(...).cycle_radius()`, `brusselator(...).hopf_parameter()`,
`duffing(...).period`, `double_gyre(...).stream_function`, `bratu(...).laplacian()` /
`.grid()`, `beer_ctrnn(...).center()` and the continuum fold `BRATU_CRITICAL_LAMBDA`.

`sincospi(x)` gives `(sin πx, cos πx)` in arithmetic that XLA vectorises, for trigonometric
vector fields of your own: on CPU a float64 `jnp.sin` is a scalar library call, and the double
gyre's FTLE field runs six times faster with `sincospi`.
"""

from ._beer import beer_ctrnn as beer_ctrnn
from ._flows import (
    brusselator as brusselator,
    double_gyre as double_gyre,
    duffing as duffing,
    lorenz as lorenz,
    rossler as rossler,
    van_der_pol as van_der_pol,
)
from ._maps import henon as henon, logistic as logistic, tanh_rnn as tanh_rnn
from ._normal_forms import (
    cusp as cusp,
    hopf as hopf,
    pitchfork as pitchfork,
    saddle_node as saddle_node,
)
from ._pde import BRATU_CRITICAL_LAMBDA as BRATU_CRITICAL_LAMBDA, bratu as bratu
from ._trig import sincospi as sincospi
