"""Expected failures: each carries a message that names the file, key, column or URI at
fault. The CLI prints it and exits 2 instead of showing a traceback."""


class HousePricesError(Exception):
    """Base class of the errors a user can fix without reading a traceback."""


class ConfigError(HousePricesError, ValueError):
    """A params file that cannot drive the pipeline; the message names the key."""


class DataError(HousePricesError, ValueError):
    """Input data that the pipeline refuses; the message names file, column and rows."""


class TrainingError(HousePricesError, RuntimeError):
    """A fit that diverged or predicted non-finite values; names model, fold and epoch."""


class TrackingError(HousePricesError, RuntimeError):
    """The tracking store cannot be used; the message names its URI."""


class SubmissionError(HousePricesError, ValueError):
    """A submission Kaggle would reject or score wrongly, or an upload that cannot run."""


class InputFileError(HousePricesError, ValueError):
    """An input file that cannot be read (truncated, corrupt); names it and the stage that rewrites it."""


class OutputPathError(HousePricesError, ValueError):
    """An output path that leads, through links, into the inputs or out of the repository."""


class DependencyTimeoutError(HousePricesError, TimeoutError):
    """A server or mirror that stopped answering; names it and how long it was given."""
