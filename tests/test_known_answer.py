"""Known answer: invalidation under a rotated true boundary, predicted by geometry.

On ``synthetic-drift`` the concept is logistic with a known boundary. A logistic regression is
trained on the base data, and Wachter's L2 recourses put every rejected test point just past the
learned boundary (probability 0.7, a distance m beyond it). The ``concept-drift`` shift then
retrains logistic regressions on labels drawn from the true concept rotated by theta. Geometry
predicts which recourses the rotated boundary rejects: along the base line, a recourse at
coordinate t from the pivot is rejected when t > m * cot(theta). So the predicted rate is the share
of recourses that the *true* rotated boundary rejects, and it grows with theta. The measured rate,
averaged over the retrained models, must match it up to the error of boundaries estimated from
14,000 rows (measured here at |difference| <= 0.02; the test allows 0.03).
"""

import numpy as np
import pytest

from recourse_bench import registry
from recourse_bench.datasets.synthetic_drift import rotated_concept
from recourse_bench.models import linear_classifier


@pytest.fixture(scope="module")
def boundary_hugging_recourse():
    splits = registry.get("dataset", "synthetic-drift")(n_samples=20000).load(0)
    trainer = registry.get("model", "logreg")(epochs=500)
    base = trainer.fit(splits.X_train, splits.y_train, seed=0)
    factuals = splits.X_test[base.predict(splits.X_test) == 0]
    method = registry.get("method", "wachter")(cost="l2", margin=0.2)
    recourses = method.fit(base, splits).generate(factuals)
    valid = recourses[base.predict(recourses) == 1]
    assert len(valid) > 2000
    return splits, trainer, base, valid


def test_measured_invalidation_matches_the_geometric_prediction(boundary_hugging_recourse):
    splits, trainer, base, recourses = boundary_hugging_recourse
    measured, predicted = [], []
    for theta in (0.15, 0.3, 0.6):
        shift = registry.get("shift", "concept-drift")(severity=theta, n_models=4)
        updated = shift.updates(splits, trainer, base, seed=100)
        measured.append(np.mean([(m.predict(recourses) == 0).mean() for m in updated]))
        rotated = linear_classifier(*rotated_concept(splits, theta))
        predicted.append((rotated.predict(recourses) == 0).mean())
    np.testing.assert_allclose(measured, predicted, atol=0.03)
    assert predicted[0] < predicted[1] < predicted[2]  # the answer depends on the angle
    assert measured[0] < measured[1] < measured[2]
