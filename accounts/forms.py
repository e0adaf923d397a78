from __future__ import annotations

from django.contrib.auth.forms import UserChangeForm, UserCreationForm

from accounts.models import User


class AdminUserCreationForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class AdminUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"
