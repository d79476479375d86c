"""Gallery queries: ordering, filters and filter counts, all inside the database."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum
from django_filters import rest_framework as filters

from webapp.datasets.models import Dataset, IonImage, Label


@dataclass(frozen=True)
class SortKey:
    """One column of a gallery ordering. Scores and m/z may be missing: those images come
    last whichever the direction (NULLS LAST), as the indexes of migration 0005 store them."""

    field: str
    desc: bool = False
    nullable: bool = False

    def expression(self):
        if self.nullable:
            f = F(self.field)
            return f.desc(nulls_last=True) if self.desc else f.asc(nulls_last=True)
        return f"-{self.field}" if self.desc else self.field


# Each ordering ends with `index`, unique within a dataset, so a dataset's gallery has one
# order; across a project, `id` breaks the remaining ties (keyset pages need a total order).
SORT_KEYS: dict[str, tuple[SortKey, ...]] = {
    "-probability": (SortKey("probability", desc=True, nullable=True), SortKey("index")),
    "probability": (SortKey("probability", nullable=True), SortKey("index")),
    "uncertainty": (SortKey("uncertainty", desc=True, nullable=True), SortKey("index")),
    "-uncertainty": (SortKey("uncertainty", nullable=True), SortKey("index")),
    "mz": (SortKey("mz", nullable=True), SortKey("index")),
    "-mz": (SortKey("mz", desc=True, nullable=True), SortKey("index")),
    "index": (SortKey("dataset_id"), SortKey("index")),
    "name": (SortKey("name"), SortKey("index")),
}
DEFAULT_ORDERING = "-probability"
ORDERINGS = {name: [k.expression() for k in keys] for name, keys in SORT_KEYS.items()}
TIE_BREAK = SortKey("id")


def sort_keys(ordering: str | None, across_datasets: bool) -> tuple[SortKey, ...]:
    """The columns that order a gallery, ending in a unique one: (dataset, index) is unique,
    so only a project-wide ordering that is not by dataset needs the id at its end."""
    keys = SORT_KEYS.get(ordering or DEFAULT_ORDERING, SORT_KEYS[DEFAULT_ORDERING])
    needs_id = across_datasets and keys[0].field != "dataset_id"
    return (*keys, TIE_BREAK) if needs_id else keys


def _after_one(key: SortKey, value) -> Q | None:
    """Rows whose `key` column comes strictly after `value` (None: nothing comes after a
    missing value, NULLS LAST)."""
    if value is None:
        return None
    later = Q(**{f"{key.field}__{'lt' if key.desc else 'gt'}": value})
    return later | Q(**{f"{key.field}__isnull": True}) if key.nullable else later


def _equal(key: SortKey, value) -> Q:
    return Q(**{f"{key.field}__isnull": True}) if value is None else Q(**{key.field: value})


def after_q(keys: tuple[SortKey, ...], values: list) -> Q:
    """Rows strictly after the row whose key columns hold `values`, in the order of `keys`
    (keyset pagination: a deep page costs what the first one does, where OFFSET walks every
    row it skips). Lexicographic: after on the first column, or equal on it and after on the
    rest."""
    q, equal = Q(pk__in=[]), Q()
    for key, value in zip(keys, values, strict=True):
        step = _after_one(key, value)
        if step is not None:
            q |= equal & step
        equal &= _equal(key, value)
    return q


def keyset_ranges(keys: tuple[SortKey, ...], values: list) -> list[Q]:
    """`after_q` split where an index can start its scan: the rows whose first column is at
    or after the cursor's value, then (nulls last) those whose first column is missing. An OR
    with `IS NULL` would make PostgreSQL give up the ordered index scan; two ranges keep it."""
    first, value = keys[0], values[0]
    after = after_q(keys, values)
    if value is None:
        return [Q(**{f"{first.field}__isnull": True}) & after]
    at_or_after = Q(**{f"{first.field}__{'lte' if first.desc else 'gte'}": value}) & after
    if not first.nullable:
        return [at_or_after]
    return [at_or_after, Q(**{f"{first.field}__isnull": True})]


LIST_FIELDS = (
    "id",
    "dataset_id",
    "index",
    "mz",
    "name",
    "formula",
    "adduct",
    "probability",
    "probabilities",
    "predicted",
    "uncertainty",
    "consensus",
    "label_count",
    "users_disagree",
    "prediction_version_id",
)


def project_images(project) -> QuerySet:
    """The images of a project's ready datasets, on the images table alone: the filter is the
    copied project column, so the project-wide indexes serve every ordering without a sort
    (through the dataset it was a join, and each page sorted all the project's rows). Datasets
    not yet ready are usually none; PostgreSQL checks the rest against a hashed list of them."""
    not_ready = Dataset.objects.filter(project=project).exclude(status=Dataset.Status.READY).values("pk")
    return IonImage.objects.filter(project=project).exclude(dataset_id__in=not_ready)


def project_image_count(project) -> int:
    """How many images project_images lists: save_images keeps each image_count equal to the
    rows, so the project gallery's total needs no COUNT(*) over its 100,000 rows."""
    ready = Dataset.objects.filter(project=project, status=Dataset.Status.READY)
    return ready.aggregate(n=Sum("image_count"))["n"] or 0


# With the columns of the image's dataset and model version that a tile shows.
ROW_FIELDS = (*LIST_FIELDS, "dataset_name", "dataset_revision", "model_version_number")


class ListingRow:
    """One gallery tile's columns, as ImageSerializer reads them (`pk`, `dataset_id`, ...).

    Not a model instance: building 100 IonImage objects was the largest part of a gallery page's
    CPU after the query (Django's Model.__init__ and from_db for each row); a page reads these
    columns and nothing else."""

    __slots__ = (*ROW_FIELDS, "my_label", "my_unsure")

    def __init__(self, values: tuple):
        for name, value in zip(ROW_FIELDS, values, strict=True):
            setattr(self, name, value)
        self.my_label, self.my_unsure = None, False

    @property
    def pk(self) -> int:
        return self.id


def for_listing(qs: QuerySet) -> QuerySet:
    """Only what a gallery tile shows, as tuples in ROW_FIELDS order, so sorting carries small
    rows: the dataset's name and revision and the model version's number come as columns, not as
    a Dataset and a ModelVersion object per row."""
    return qs.annotate(
        dataset_name=F("dataset__name"),
        dataset_revision=F("dataset__revision"),
        model_version_number=F("prediction_version__number"),
    ).values_list(*ROW_FIELDS)


def listing_rows(qs: QuerySet) -> list[ListingRow]:
    """The images of `qs` as gallery tiles (see for_listing), in the order of `qs`."""
    return [ListingRow(values) for values in for_listing(qs)]


def attach_my_labels(images: list, user) -> None:
    """The caller's own label for a page of images: one query for the page, not a subquery
    per row (which PostgreSQL evaluates for every row an OFFSET skips, too)."""
    mine = {i: (v, u) for i, v, u in _labels_of(user, [im.pk for im in images])}
    for im in images:
        im.my_label, im.my_unsure = mine.get(im.pk, (None, False))


def _labels_of(user, ids: list[int]):
    """(image id, value, unsure) of `user`'s labels on `ids`. On PostgreSQL the ids go as one
    array parameter: building `IN (%s, ... x100)` through the ORM was a sixth of a gallery
    page's CPU."""
    if not ids or connection.vendor != "postgresql":
        return Label.objects.filter(image_id__in=ids, user=user).values_list("image_id", "value", "unsure")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT image_id, value, unsure FROM {Label._meta.db_table} "  # noqa: S608 - a model's table name
            "WHERE user_id = %s AND image_id = ANY(%s)",
            [user.pk, ids],
        )
        return cursor.fetchall()


def with_my_label(qs: QuerySet, user) -> QuerySet:
    mine = Label.objects.filter(image=OuterRef("pk"), user=user)
    return qs.annotate(
        my_label=Subquery(mine.values("value")[:1]), my_unsure=Subquery(mine.values("unsure")[:1])
    )


def ordered(qs: QuerySet, ordering: str | None, across_datasets: bool = False) -> QuerySet:
    return qs.order_by(*[k.expression() for k in sort_keys(ordering, across_datasets)])


def class_q(field: str, name: str, multilabel: bool = True) -> Q:
    """Images whose `field` (one class name, or several joined by spaces) includes `name`.
    Outside multi-label projects a field holds one name: an equality (a smaller query to build
    and to run)."""
    if not multilabel:
        return Q(**{field: name})
    return (
        Q(**{field: name})
        | Q(**{f"{field}__startswith": f"{name} "})
        | Q(**{f"{field}__endswith": f" {name}"})
        | Q(**{f"{field}__contains": f" {name} "})
    )


def disagreement_q() -> Q:
    """A prediction that differs from the human consensus."""
    return Q(consensus__isnull=False) & Q(probabilities__isnull=False) & ~Q(predicted=F("consensus"))


class ImageFilter(filters.FilterSet):
    predicted = filters.CharFilter(method="filter_class", help_text="predicted class name")
    label = filters.CharFilter(method="filter_class", help_text="consensus label (class name)")
    prob_min = filters.NumberFilter(field_name="probability", lookup_expr="gte")
    prob_max = filters.NumberFilter(field_name="probability", lookup_expr="lte")
    mz_min = filters.NumberFilter(field_name="mz", lookup_expr="gte")
    mz_max = filters.NumberFilter(field_name="mz", lookup_expr="lte")
    search = filters.CharFilter(field_name="name", lookup_expr="icontains", help_text="part of the name")
    labelled = filters.BooleanFilter(method="filter_labelled", help_text="has any human label")
    disagreement = filters.BooleanFilter(
        method="filter_disagreement", help_text="prediction differs from the label"
    )
    users_disagree = filters.BooleanFilter(field_name="users_disagree")
    labelled_by = filters.ChoiceFilter(
        choices=[("me", "me"), ("others", "others"), ("not_me", "not me")], method="filter_labelled_by"
    )
    # Bounded: an id past 64 bits is a 400, not a database overflow (found by the schema fuzzer).
    dataset = filters.NumberFilter(
        field_name="dataset_id", min_value=1, max_value=2**63 - 1, decimal_places=0
    )

    class Meta:
        model = IonImage
        fields: list[str] = []

    def filter_class(self, qs, name, value):
        return qs.filter(class_q("predicted" if name == "predicted" else "consensus", value))

    def filter_labelled(self, qs, name, value):
        return qs.filter(label_count__gt=0) if value else qs.filter(label_count=0)

    def filter_disagreement(self, qs, name, value):
        return qs.filter(disagreement_q()) if value else qs.exclude(disagreement_q())

    def filter_labelled_by(self, qs, name, value):
        user = self.request.user
        mine = Label.objects.filter(image=OuterRef("pk"), user=user)
        others = Label.objects.filter(image=OuterRef("pk")).exclude(user=user)
        if value == "me":
            return qs.filter(Exists(mine))
        if value == "not_me":
            return qs.exclude(Exists(mine))
        return qs.filter(Exists(others))


def counts(qs: QuerySet, user, classes: list[str], multilabel: bool = True) -> dict:
    """How many images each filter would show, for the gallery's filter bar."""
    mine = Label.objects.filter(image=OuterRef("pk"), user=user)
    others = Label.objects.filter(image=OuterRef("pk")).exclude(user=user)
    # One pass over the rows for every plain filter; the two "labelled by" counts stay separate
    # queries because as EXISTS in WHERE they are semi-joins, inside an aggregate a probe per row.
    agg = qs.aggregate(
        total=Count("pk"),
        labelled=Count("pk", filter=Q(label_count__gt=0)),
        unlabelled=Count("pk", filter=Q(label_count=0)),
        disagreement=Count("pk", filter=disagreement_q()),
        users_disagree=Count("pk", filter=Q(users_disagree=True)),
        scored=Count("pk", filter=Q(probability__isnull=False)),
        **{f"p_{i}": Count("pk", filter=class_q("predicted", c, multilabel)) for i, c in enumerate(classes)},
        **{f"l_{i}": Count("pk", filter=class_q("consensus", c, multilabel)) for i, c in enumerate(classes)},
    )
    agg["labelled_by_me"] = qs.filter(Exists(mine)).count()
    agg["labelled_by_others"] = qs.filter(Exists(others)).count()
    agg["predicted"] = {c: agg.pop(f"p_{i}") for i, c in enumerate(classes)}
    agg["label"] = {c: agg.pop(f"l_{i}") for i, c in enumerate(classes)}
    return agg
