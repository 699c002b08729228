"""Cognitive tasks: batches of trials generated in JAX, with NeuroGym's conventions."""

from ._base import (
    AbstractChoiceTask as AbstractChoiceTask,
    AbstractRegressionTask as AbstractRegressionTask,
    AbstractTask as AbstractTask,
    Trial as Trial,
)
from ._continuous import (
    AngularIntegration as AngularIntegration,
    FlipFlop as FlipFlop,
    Integrator as Integrator,
)
from ._decision import (
    ContextDecisionMaking as ContextDecisionMaking,
    MultiSensoryIntegration as MultiSensoryIntegration,
    PerceptualDecisionMaking as PerceptualDecisionMaking,
)
from ._epochs import (
    AbstractDuration as AbstractDuration,
    Choice as Choice,
    Constant as Constant,
    TruncExp as TruncExp,
    Uniform as Uniform,
)
from ._memory import DelayComparison as DelayComparison, GoNoGo as GoNoGo
from ._recipes import recipe as recipe
from ._registry import TASKS as TASKS, get_task as get_task
from ._stream import Stream as Stream
from ._timing import IntervalDiscrimination as IntervalDiscrimination, ReadySetGo as ReadySetGo
