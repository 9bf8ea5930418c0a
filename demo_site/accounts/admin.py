from __future__ import annotations

from django.contrib import admin

from demo_site.accounts.models import Profile


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "avatar"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    raw_id_fields = ["user"]
