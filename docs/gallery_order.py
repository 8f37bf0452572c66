"""The gallery's order: the README's reading order, then new scripts by name."""

ORDER = [
    "plot_digits_density.py",
    "plot_model_selection.py",
    "plot_latent_space.py",
    "plot_reconstruction.py",
    "plot_penguins.py",
    "plot_imputation.py",
    "plot_conditional_sampling.py",
    "plot_novelty.py",
    "plot_custom_network.py",
]


class ReadingOrder:
    """A sphinx-gallery ``within_subsection_order`` key: a file's place in ``ORDER``."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        return (ORDER.index(filename) if filename in ORDER else len(ORDER), filename)

    def __repr__(self):
        return f"<{self.__class__.__name__}>"
