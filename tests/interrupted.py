"""A classifier that stops a many-video run as Ctrl-C would, for the tests of resumable outputs
(test_features, test_predict)."""


class Interrupted:
    """Wraps a `predictor.Classifier`: raises KeyboardInterrupt at its call number `after`."""

    def __init__(self, classifier, after):
        self.classifier, self.after, self.calls = classifier, after, 0

    def __getattr__(self, name):
        return getattr(self.classifier, name)

    def __call__(self, inputs):
        if self.calls == self.after:
            raise KeyboardInterrupt
        self.calls += 1
        return self.classifier(inputs)
