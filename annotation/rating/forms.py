from django import forms


class JoinForm(forms.Form):
    external_id = forms.CharField(
        max_length=200,
        label="Your participant id",
        help_text="The id from your crowdsourcing platform, or any name you will recognise.",
    )
    consent = forms.BooleanField(
        required=True,
        label="I have read the information above and agree to take part.",
        error_messages={"required": "Please give your consent to take part, or close this page."},
    )
