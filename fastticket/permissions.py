from rest_framework.permissions import SAFE_METHODS, BasePermission


class IsStaff(BasePermission):
    """Staff only: anonymous callers get 401, other users 403."""

    message = "Only staff may do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class IsStaffOrReadOnly(IsStaff):
    """Anyone may read; only staff may write."""

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or super().has_permission(request, view)
