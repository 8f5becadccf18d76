/*
 * todod's page: everything goes through the JSON API with fetch().  Text
 * from the server (the certificate's CN, the tasks) is only ever set with
 * textContent, never parsed as HTML.
 */
"use strict";

const api = "/todo";

function $(id) {
	return document.getElementById(id);
}

function showError(text) {
	const s = $("status");
	s.textContent = text;
	s.hidden = text === "";
}

/* One API call; resolves to the parsed body, rejects with a message. */
async function call(method, path, body) {
	const opts = { method: method,
	    headers: { "Accept": "application/json" },
	    credentials: "same-origin", cache: "no-store" };
	if (body !== undefined) {
		opts.headers["Content-Type"] = "application/json";
		opts.body = JSON.stringify(body);
	}
	let r;
	try {
		r = await fetch(path, opts);
	} catch (e) {
		throw new Error("the server cannot be reached (" + e.message +
		    ")");
	}
	let data = null;
	try {
		data = await r.json();
	} catch (e) {
		data = null;
	}
	if (!r.ok) {
		const why = data && typeof data.error === "string" ?
		    data.error : r.statusText;
		let text = method + " " + path + ": " + r.status + " " + why;
		if (r.status === 403 && method !== "GET" &&
		    why === "not authorized")
			text += " (this certificate may only read)";
		throw new Error(text);
	}
	return data;
}

function button(label, action) {
	const b = document.createElement("button");
	b.type = "button";
	b.textContent = label;
	b.addEventListener("click", action);
	return b;
}

/* Replace the task text by an input; Enter saves, Escape cancels. */
function startEdit(li, todo) {
	const input = document.createElement("input");
	input.className = "edit";
	input.value = todo.task;
	input.maxLength = 4096;
	const span = li.querySelector(".task");
	li.replaceChild(input, span);
	input.focus();
	const save = () => act("PATCH", api + "/" + todo.id,
	    { task: input.value });
	input.addEventListener("keydown", (ev) => {
		if (ev.key === "Enter")
			save();
		else if (ev.key === "Escape")
			load();
	});
	li.querySelector(".edit-button").replaceWith(button("Save", save));
}

function row(todo) {
	const li = document.createElement("li");
	li.dataset.id = String(todo.id);
	if (todo.done)
		li.classList.add("done");
	const box = document.createElement("input");
	box.type = "checkbox";
	box.checked = todo.done;
	box.title = "done";
	box.addEventListener("change", () =>
	    act("PATCH", api + "/" + todo.id, { done: box.checked }));
	const span = document.createElement("span");
	span.className = "task";
	span.textContent = todo.task;
	const edit = button("Edit", () => startEdit(li, todo));
	edit.className = "edit-button";
	const del = button("Delete", () => act("DELETE", api + "/" + todo.id));
	del.className = "delete-button";
	li.append(box, span, edit, del);
	return li;
}

async function load() {
	let data;
	try {
		data = await call("GET", api);
	} catch (e) {
		showError(e.message);
		return;
	}
	$("who").textContent = data.client;
	const list = $("list");
	list.replaceChildren(...data.todos.map(row));
	$("empty").hidden = data.todos.length > 0;
	document.body.dataset.loaded = String(data.todos.length);
}

/* A write, then the list again (it shows what the store now holds). */
async function act(method, path, body) {
	try {
		await call(method, path, body);
		showError("");
	} catch (e) {
		showError(e.message);
	}
	await load();
}

$("add-form").addEventListener("submit", async (ev) => {
	ev.preventDefault();
	const input = $("new-task");
	const task = input.value;
	if (task.trim() === "")
		return;
	try {
		await call("POST", api, { task: task });
		input.value = "";
		showError("");
	} catch (e) {
		showError(e.message);
	}
	await load();
});

load();
