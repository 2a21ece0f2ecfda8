"""Accounts API: signup, JWT login/refresh/logout, a password change, and the caller's own profile."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt import views as jwt_views

from accounts import services
from accounts.serializers import (
    LoginSerializer,
    LogoutSerializer,
    PasswordChangeSerializer,
    RefreshSerializer,
    SignupSerializer,
    TokenPairSerializer,
    UserSerializer,
)
from fastticket.schema import errors
from fastticket.throttling import AuthRateThrottle, LoginUsernameRateThrottle, PasswordChangeRateThrottle


class SignupView(APIView):
    permission_classes = []
    authentication_classes = []
    throttle_classes = [AuthRateThrottle]

    @extend_schema(
        tags=["auth"],
        summary="Create an account",
        request=SignupSerializer,
        responses={201: UserSerializer, **errors(400, 413, 429)},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        serializer = SignupSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_create(**serializer.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginView(jwt_views.TokenObtainPairView):
    serializer_class = LoginSerializer
    throttle_classes = [AuthRateThrottle, LoginUsernameRateThrottle]

    @extend_schema(
        tags=["auth"],
        summary="Log in: exchange username and password for an access and a refresh token",
        responses={200: TokenPairSerializer, **errors(400, 401, 413, 429)},
        auth=[],
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        return super().post(request, *args, **kwargs)


class RefreshView(jwt_views.TokenRefreshView):
    serializer_class = RefreshSerializer
    throttle_classes = [AuthRateThrottle]

    @extend_schema(
        tags=["auth"],
        summary="Exchange a refresh token for a new pair (the old refresh token stops working)",
        responses={200: TokenPairSerializer, **errors(400, 401, 413, 429)},
        auth=[],
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        return super().post(request, *args, **kwargs)


class LogoutView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=["auth"],
        summary="Log out: revoke a refresh token for good",
        request=LogoutSerializer,
        responses={204: OpenApiResponse(description="Revoked."), **errors(400, 401, 413, 429)},
    )
    def post(self, request: Request) -> Response:
        serializer = LogoutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.user_logout(user=request.user, refresh=serializer.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [AuthRateThrottle, PasswordChangeRateThrottle]

    @extend_schema(
        tags=["auth"],
        summary="Change the password: every refresh token of the user stops working, access tokens within 60 s",
        request=PasswordChangeSerializer,
        responses={
            204: OpenApiResponse(description="Changed; log in again with the new password."),
            **errors(400, 401, 413, 429),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = PasswordChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.user_password_change(user=request.user, **serializer.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=["auth"],
        summary="Show the authenticated user",
        responses={200: UserSerializer, **errors(401, 429)},
    )
    def get(self, request: Request) -> Response:
        return Response(UserSerializer(request.user).data)
