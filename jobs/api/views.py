"""The REST API under /api/v1/. Views translate HTTP to service calls; the rules are in jobs.services."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet, Value
from django.urls import Resolver404, resolve, reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from accounts.models import ApiToken
from jobs import pagination, selectors, services, submit
from jobs.api import schema  # noqa: F401 - registers the token scheme with drf-spectacular
from jobs.api.schema import BAD_INPUT, CONFLICT, NOT_FOUND, responses
from jobs.api.serializers import (
    MAX_BATCH,
    JobBatchCreatedSerializer,
    JobBatchInput,
    JobCreatedSerializer,
    JobDetailSerializer,
    JobFilterInput,
    JobInput,
    JobSerializer,
    MeSerializer,
    NamespaceSerializer,
)
from jobs.api.throttles import JobCreateThrottle
from jobs.models import SyncJob, TargetNamespace

RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    int,
    OpenApiParameter.HEADER,
    response=[429],
    description="Seconds to wait before trying again.",
)


CREATED = OpenApiResponse(
    PolymorphicProxySerializer(
        component_name="JobCreateResponse",
        serializers=[JobCreatedSerializer, JobBatchCreatedSerializer],
        resource_type_field_name=None,
    ),
    description='The job, or {"jobs": [...]} for a batch; at least one was created.',
)
DEDUPLICATED = OpenApiResponse(
    CREATED.response,
    description="Nothing new: every job asked for was an identical active job of yours, returned with "
    '"deduplicated": true.',
)


class JobPagination(PageNumberPagination):
    """Pages of jobs with ``count``, exact up to 1,000 jobs; ``count_exact`` says whether it is.

    Past the limit, ``count`` is how many jobs were counted, at least enough to show that the
    asked page and the next exist, so ``next`` still leads through every page.
    """

    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any] | None:
        count_limit = pagination.count_limit_for(
            request.query_params.get(self.page_query_param),
            self.get_page_size(request) or 0,
            last_page_strings=tuple(self.last_page_strings),
        )
        self.django_paginator_class = partial(pagination.LimitedCountPaginator, count_limit=count_limit)
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data: Any) -> Response:
        response = super().get_paginated_response(data)
        response.data["count_exact"] = self.page.paginator.count_exact
        return response

    def get_paginated_response_schema(self, results_schema: dict[str, Any]) -> dict[str, Any]:
        paginated = super().get_paginated_response_schema(results_schema)
        paginated["required"] = [*paginated.get("required", []), "count_exact"]
        paginated["properties"]["count_exact"] = {
            "type": "boolean",
            "description": "True when count is the number of matching jobs; false when there are more "
            f"(counting stops at {pagination.COUNT_LIMIT}, or just past the page asked for).",
        }
        return paginated


class JobViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Your image jobs: copy one tag or sync a repository into a namespace, and follow them."""

    pagination_class = JobPagination
    parser_classes = [JSONParser]
    def get_queryset(self) -> QuerySet[SyncJob]:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular inspecting, no real user
            return SyncJob.objects.none()
        jobs = selectors.jobs_visible_to(self.request.user)
        if self.action == "retrieve":
            jobs = jobs.prefetch_related("transitions")
        elif self.action == "list":
            jobs = jobs.defer("result", "log_excerpt")  # only a job's own page shows them
        return jobs

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        return JobDetailSerializer if self.action == "retrieve" else JobSerializer

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            # Whatever the answer, a crash included: the creation places taken for jobs that
            # were not created (refused, deduplicated) are given back.
            JobCreateThrottle.settle(self, getattr(self, "jobs_created", 0))

    def get_throttles(self) -> list[BaseThrottle]:
        throttles = super().get_throttles()
        if self.action in ("create", "retry"):
            # After the per-token throttle, so that a request whose body cannot be read
            # (read here, to count the jobs it asks for) has been counted already.
            throttles.append(JobCreateThrottle())
        return throttles

    def jobs_wanted(self) -> int:
        """How many jobs this request asks for: what it takes of the creation limit."""
        # A batch over MAX_BATCH is refused by its validation, with that limit's message.
        return min(_jobs_in(self.request.data), MAX_BATCH) if self.action == "create" else 1

    @extend_schema(
        parameters=[JobFilterInput, RETRY_AFTER],
        responses=responses({200: JobSerializer(many=True)}, BAD_INPUT, NOT_FOUND),
        description="Your jobs, newest first (staff: `all=true` or `owner=` for others'). "
        "Paginated: `page`, `page_size` (at most 100).",
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def filter_queryset(self, queryset: QuerySet[SyncJob]) -> QuerySet[SyncJob]:
        if self.action != "list":
            return queryset
        params = JobFilterInput(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        f = params.validated_data
        return selectors.jobs_filtered(
            queryset,
            self.request.user,
            everyone=f.get("all", False),
            owner_email=f.get("owner"),
            statuses=f.get("status"),
            kind=f.get("kind"),
            namespace=f.get("namespace"),
            search=f.get("search"),
            ids=f.get("id"),
        )

    @extend_schema(
        parameters=[RETRY_AFTER],
        responses=responses({200: JobDetailSerializer}, NOT_FOUND),
        description="One job with its history (transitions) and per-tag results.",
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        request=PolymorphicProxySerializer(
            component_name="JobCreateRequest",
            serializers=[JobInput, JobBatchInput],
            resource_type_field_name=None,
        ),
        parameters=[RETRY_AFTER],
        responses=responses({201: CREATED, 200: DEDUPLICATED}, BAD_INPUT),
        description='Start one job, or a batch `{"jobs": [...]}` of up to 10 (all or none). '
        '201 with the job (or `{"jobs": [...]}`); each carries `deduplicated`. '
        "Job creations are limited per user (API_JOB_CREATE_RATE, by default 10 a minute); "
        "a batch needs room for all its jobs.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = request.data
        if isinstance(data, dict) and "jobs" in data:
            batch = JobBatchInput(data=data)
            batch.is_valid(raise_exception=True)
            return self._create_batch(batch.validated_data["jobs"])
        if not isinstance(data, dict):
            raise ValidationError(
                {"non_field_errors": ['send one job as an object, or several as {"jobs": [...]}']}
            )
        item = JobInput(data=data)
        item.is_valid(raise_exception=True)
        outcome = submit.submit_all(owner=request.user, items=[_item(0, item.validated_data)])
        if not outcome.submitted:
            raise ValidationError(_refusals(outcome)["0"])
        [(_key, job, created)] = outcome.jobs
        self.jobs_created = int(created)
        body = JobCreatedSerializer(_marked(job, created)).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def _create_batch(self, raw_items: list[Any]) -> Response:
        items: list[submit.Item] = []
        shape_errors: list[submit.ItemError] = []
        for index, raw in enumerate(raw_items):
            item = JobInput(data=raw)
            if item.is_valid():
                items.append(_item(index, item.validated_data))
            else:
                shape_errors += [
                    submit.ItemError(index, name, str(message))
                    for name, messages in item.errors.items()
                    for message in messages
                ]
        outcome = submit.submit_all(owner=self.request.user, items=items, known_errors=shape_errors)
        if not outcome.submitted:
            raise ValidationError({"jobs": _refusals(outcome)})
        created = sum(was_created for _key, _job, was_created in outcome.jobs)
        self.jobs_created = created
        jobs = [_marked(job, was_created) for _key, job, was_created in outcome.jobs]
        body = JobBatchCreatedSerializer({"jobs": jobs}).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        request=None,
        parameters=[RETRY_AFTER],
        responses=responses({204: None}, NOT_FOUND, CONFLICT),
        description="Delete a finished job and its history. An active job must be cancelled first (409).",
    )
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.job_delete(job=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        parameters=[RETRY_AFTER],
        responses=responses({200: JobSerializer}, NOT_FOUND, CONFLICT),
        description="Cancel the job: at once if GitHub has not seen it yet, otherwise its run is cancelled "
        "(the job shows cancel_requested_at until the run ends). 409 if it already finished.",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        services.job_cancel(job=self.get_object(), actor=request.user.email)
        return Response(JobSerializer(self.get_object()).data)  # as it is now, namespace and owner joined

    @extend_schema(
        request=None,
        parameters=[RETRY_AFTER],
        responses=responses(
            {
                201: JobCreatedSerializer,
                200: OpenApiResponse(JobCreatedSerializer, description="Deduplicated."),
            },
            BAD_INPUT,
            NOT_FOUND,
            CONFLICT,
        ),
        description="Start a failed, cancelled or errored job again as a new job (201). "
        "409 for other states.",
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        job, created = services.job_retry(job=self.get_object(), actor=request.user)
        self.jobs_created = int(created)
        body = JobCreatedSerializer(_marked(job, created)).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def _jobs_in(data: Any) -> int:
    if isinstance(data, dict) and isinstance(data.get("jobs"), list):
        return max(1, len(data["jobs"]))
    return 1


ON_CLASH = {"refuse": "", "rename": submit.RENAME, "keep": submit.KEEP}


def _item(index: int, fields: dict[str, Any]) -> submit.Item:
    fields = dict(fields)
    return submit.Item(key=index, on_clash=ON_CLASH[fields.pop("on_clash", "refuse")], **fields)


def _refusals(outcome: submit.Outcome) -> dict[str, dict[str, list[str]]]:
    """Why a submission was refused, by item index and field (items sorted by index)."""
    refused: dict[int, dict[str, list[str]]] = {}
    for error in outcome.errors:
        refused.setdefault(int(error.key), {}).setdefault(error.field, []).append(error.message)
    for clash in outcome.clashes:
        refused.setdefault(int(clash.key), {}).setdefault("on_clash", []).append(_clash_message(clash))
    return {str(index): refused[index] for index in sorted(refused)}


def _clash_message(clash: submit.Clash) -> str:
    if clash.suggestion is None:
        return (
            f"{clash.source} would be synced into a repository that holds another image's tags: "
            'send "on_clash": "keep" to mix them, or copy its tags one by one to another name'
        )
    return (
        f"{clash.source} would be copied into a repository that holds another image's tags: "
        f'send "on_clash": "rename" to copy it to {clash.suggestion} instead, or "keep" to mix them'
    )


def _marked(job: SyncJob, created: bool) -> SyncJob:
    """The job as the create answer shows it: marked when it is an identical job already under way."""
    job.deduplicated = not created  # type: ignore[attr-defined]
    return job


class NamespaceViewSet(viewsets.ReadOnlyModelViewSet):
    """Namespaces you may push to (staff: all), with how many repositories they hold."""

    serializer_class = NamespaceSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[TargetNamespace]:
        if getattr(self, "swagger_fake_view", False):
            return TargetNamespace.objects.none()
        user = self.request.user
        namespaces = selectors.namespaces_listed_for(user)
        if user.is_staff:
            pushable = TargetNamespace.objects.pushable_by(user).filter(pk=OuterRef("pk"))
            return namespaces.annotate(can_push=Exists(pushable))
        return namespaces.annotate(can_push=Value(True))

    @extend_schema(parameters=[RETRY_AFTER], responses=responses({200: NamespaceSerializer(many=True)}))
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        namespaces = selectors.with_repository_use(self.filter_queryset(self.get_queryset()))
        return Response(self.get_serializer(namespaces, many=True).data)

    @extend_schema(parameters=[RETRY_AFTER], responses=responses({200: NamespaceSerializer}, NOT_FOUND))
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        [namespace] = selectors.with_repository_use([self.get_object()])
        return Response(self.get_serializer(namespace).data)


class MeView(APIView):
    """Who the token (or browser session) belongs to."""

    @extend_schema(parameters=[RETRY_AFTER], responses=responses({200: MeSerializer}))
    def get(self, request: Request) -> Response:
        user = request.user
        token = request.auth if isinstance(request.auth, ApiToken) else None
        body = {
            "id": user.pk,
            "email": user.email,
            "name": user.get_full_name(),
            "is_staff": user.is_staff,
            "authenticated_by": "token" if token else "session",
            "token": token,
            "portal_url": request.build_absolute_uri(reverse("home")),
        }
        return Response(MeSerializer(body).data)


@extend_schema(exclude=True)
class NotFoundView(APIView):
    """Anything else under /api/: a JSON 404, with a hint when only the trailing slash is missing."""

    permission_classes = [AllowAny]

    def not_found(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not request.path.endswith("/"):
            try:
                match = resolve(request.path + "/")
            except Resolver404:
                match = None
            if match is not None and getattr(match.func, "view_class", None) is not NotFoundView:
                raise NotFound(f"Not found. Did you mean {request.path}/ (with a trailing slash)?")
        raise NotFound()

    get = post = put = patch = delete = head = options = not_found
