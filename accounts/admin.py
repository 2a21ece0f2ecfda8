from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "email", "is_staff", "is_active", "created_at"]
    list_filter = ["is_staff", "is_active", "is_superuser"]
    search_fields = ["username", "email"]
    ordering = ["username"]
    readonly_fields = ["id", "created_at", "last_login", "date_joined"]
    add_fieldsets = ((None, {"classes": ["wide"], "fields": ["username", "email", "password1", "password2"]}),)
